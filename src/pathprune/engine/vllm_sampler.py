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

from .sampling import SamplingParams, Workspace, choose_tokens, path_uniforms

KEY = "pathprune"
"""``SamplingParams.extra_args[KEY] = (path key, tokens before this request, temperature, top_p, top_k, banned)``."""


class PathSampler(LogitsProcessor):
    """Choose each pathprune row's token from its own (key, step) stream."""

    def __init__(self, vllm_config, device: torch.device, is_pin_memory: bool) -> None:
        self.rows: dict[int, tuple] = {}
        self.workspace = Workspace()  # the sampler's float64 buffers, reused every step

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
        # rows grouped by sampling settings; each group's uniforms, softmax and search run as one batch
        groups: dict[tuple, list[tuple[int, int, int]]] = {}
        for row, (key, before, temperature, top_p, top_k, banned, output) in self.rows.items():
            groups.setdefault((temperature, top_p, top_k, tuple(banned)), []).append((row, key, before + len(output)))
        for (temperature, top_p, top_k, banned), members in groups.items():
            rows, keys, steps = (torch.tensor(column, dtype=torch.long) for column in zip(*members))
            # every row ours, in order (the usual case): work on the logits themselves, no (B, V) gather
            whole = len(members) == logits.shape[0] and bool((rows == torch.arange(len(members))).all())
            sub = logits.float() if whole else logits[rows].float()
            if banned:
                sub[:, list(banned)] = float("-inf")
            params = SamplingParams(temperature=temperature, top_p=top_p, top_k=top_k)
            chosen = choose_tokens(sub, params, path_uniforms(keys, steps), self.workspace).to(logits.device)
            rows = rows.to(logits.device)
            logits.index_fill_(0, rows, float("-inf"))  # a one-hot row that vLLM's greedy sampler takes as is
            logits[rows, chosen] = 0.0
        return logits
