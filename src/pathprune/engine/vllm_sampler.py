"""pathprune's per-path random streams inside vLLM, as a vLLM logits processor.

vLLM seeds a request's generator once, so a path paused at a checkpoint and
resubmitted as prompt + prefix would draw different tokens than had it run on.
pathprune's paths draw step ``t``'s token from a uniform that depends only on
(seed, request, path, t) (:func:`~pathprune.engine.sampling.path_uniforms`):
this processor makes that choice itself, with the same
:func:`~pathprune.engine.sampling.choose_tokens` as the transformers backend,
and leaves vLLM a one-hot row that its greedy sampler takes as is. So pausing,
pruning with k = N, or resuming never changes a path, and the two backends
draw the same tokens wherever their logits agree.

Requests without ``extra_args["pathprune"]`` (any other client of the same
engine) are left alone. Log-probabilities are unaffected: vLLM computes its
returned log-probabilities from the raw logits, before any logits processor.
"""

from __future__ import annotations

import torch
from vllm.v1.sample.logits_processor import BatchUpdate, LogitsProcessor
from vllm.v1.sample.logits_processor.builtin import process_dict_updates

from .sampling import SamplingParams, choose_tokens, path_uniforms

KEY = "pathprune"
"""``SamplingParams.extra_args[KEY] = (path key, tokens before this request, temperature, top_p, top_k, banned)``."""


class PathSampler(LogitsProcessor):
    """Choose each pathprune row's token from its own (key, step) stream."""

    def __init__(self, vllm_config, device: torch.device, is_pin_memory: bool) -> None:
        self.rows: dict[int, tuple] = {}

    def is_argmax_invariant(self) -> bool:
        return False

    @staticmethod
    def _state(params, prompt_ids, output_ids):
        spec = (params.extra_args or {}).get(KEY)
        return None if spec is None else (*spec, output_ids)  # output_ids: vLLM's live list

    def update_state(self, batch_update: BatchUpdate | None) -> None:
        process_dict_updates(self.rows, batch_update, self._state)

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        if not self.rows:
            return logits
        groups: dict[tuple, list[int]] = {}
        for row, (_, _, temperature, top_p, top_k, banned, _) in self.rows.items():
            groups.setdefault((temperature, top_p, top_k, tuple(banned)), []).append(row)
        for (temperature, top_p, top_k, banned), rows in groups.items():
            keys = torch.tensor([self.rows[r][0] for r in rows], dtype=torch.long)
            steps = [self.rows[r][1] + len(self.rows[r][6]) for r in rows]
            sub = logits[rows].float()
            if banned:
                sub[:, list(banned)] = float("-inf")
            params = SamplingParams(temperature=temperature, top_p=top_p, top_k=top_k)
            uniforms = torch.stack([path_uniforms(keys[i:i + 1], s)[0] for i, s in enumerate(steps)])
            chosen = choose_tokens(sub, params, uniforms).to(logits.device)
            one_hot = torch.full_like(logits[rows], float("-inf"))
            one_hot[torch.arange(len(rows), device=logits.device), chosen] = 0.0
            logits[rows] = one_hot
        return logits
