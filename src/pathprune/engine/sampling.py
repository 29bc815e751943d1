"""Sampling parameters, per-path random streams and token choice.

The decode loop lives in :class:`pathprune.engine.batch.LiveBatch`; plain batched
sampling (Launch without checkpoints) is :func:`pathprune.engine.loop.sample`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import PathpruneError


@dataclass(frozen=True)
class SamplingParams:
    """How paths are sampled (names follow OpenAI / vLLM)."""

    n: int = 1
    """Paths per prompt."""
    temperature: float = 1.0
    """0 means greedy."""
    top_p: float = 1.0
    """Nucleus sampling mass in (0, 1]."""
    top_k: int = 0
    """Keep the k most likely tokens; 0 disables."""
    max_new_tokens: int = 256
    """Generated tokens per path, EOS included."""
    seed: int | None = 0
    """Seed of the per-path random streams; None draws a fresh one."""
    step_delimiter: str = "\n"
    """Where a reasoning step ends, for step checkpoints (``stepM/L`` stages): matched on decoded text."""

    def __post_init__(self) -> None:
        checks = [
            (self.n >= 1, "n", "must be >= 1"),
            (self.temperature >= 0, "temperature", "must be >= 0"),
            (0 < self.top_p <= 1, "top_p", "must be in (0, 1]"),
            (self.top_k >= 0, "top_k", "must be >= 0"),
            (self.max_new_tokens >= 1, "max_new_tokens", "must be >= 1"),
            (isinstance(self.step_delimiter, str) and bool(self.step_delimiter), "step_delimiter",
             "must be a non-empty string"),
        ]
        for ok, name, rule in checks:
            if not ok:
                value = getattr(self, name)
                raise PathpruneError(f"{name} {rule}, got {value}", parameter=name, value=value)


def _lsr(z: torch.Tensor, k: int) -> torch.Tensor:
    """Logical right shift of int64 (torch's >> is arithmetic)."""
    return (z >> k) & ((1 << (64 - k)) - 1)


def _signed(c: int) -> int:
    return c - (1 << 64) if c >= 1 << 63 else c


def mix64(x: torch.Tensor) -> torch.Tensor:
    """splitmix64 finaliser on int64 tensors (wrapping arithmetic): a counter-based RNG."""
    z = x + _signed(0x9E3779B97F4A7C15)
    z = (z ^ _lsr(z, 30)) * _signed(0xBF58476D1CE4E5B9)
    z = (z ^ _lsr(z, 27)) * _signed(0x94D049BB133111EB)
    return z ^ _lsr(z, 31)


def path_keys(seed: int, problem_keys: list[int], n: int) -> torch.Tensor:
    """One random key per path, (len(problem_keys) * n,), from (seed, problem, path index)."""
    base = mix64(torch.tensor([seed], dtype=torch.long))
    problems = mix64(base ^ torch.tensor(problem_keys, dtype=torch.long))
    return mix64(problems.repeat_interleave(n) ^ torch.arange(n).repeat(len(problem_keys)))


def path_uniforms(keys: torch.Tensor, step: int | torch.Tensor) -> torch.Tensor:
    """Uniform [0, 1) draws, one per path for this decoding step (float64).

    ``step`` is one step for every path, or one per path (a tensor like ``keys``: paths of one vLLM batch sit
    at different steps). Every path's randomness depends only on (seed, problem, path index, step), never on
    which other paths share its batch: pruning, batch sizes and problems-per-batch leave the surviving paths'
    samples unchanged.
    """
    steps = step.to(keys.dtype) if isinstance(step, torch.Tensor) else torch.full_like(keys, step)
    return _lsr(mix64(keys ^ mix64(steps)), 11).double() * 2.0**-53


class Workspace:
    """Reused float64 buffers for :func:`choose_tokens`: a fresh (B, V) float64 tensor every decode step costs
    more than the softmax itself (new pages each time); the same kernels writing into kept buffers give the
    same bits about 4× faster. One per decode loop (not shared between threads)."""

    def __init__(self) -> None:
        self._buffers: tuple[torch.Tensor, torch.Tensor] | None = None

    def get(self, rows: int, vocab: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        b = self._buffers
        if b is None or b[0].shape[0] < rows or b[0].shape[1] != vocab or b[0].device != device:
            b = self._buffers = tuple(torch.empty(rows, vocab, dtype=torch.float64, device=device) for _ in range(2))
        return b[0][:rows], b[1][:rows]


def choose_tokens(logits: torch.Tensor, params: SamplingParams, uniforms: torch.Tensor,
                  workspace: Workspace | None = None) -> torch.Tensor:
    """Pick one token per row of ``logits`` (B, V) under temperature / top-k / top-p,
    by inverse-CDF sampling with the given per-row uniforms (B,); ``workspace`` only makes it faster."""
    if params.temperature == 0:
        return logits.argmax(-1)
    probs, cdf = workspace.get(*logits.shape, logits.device) if workspace is not None else (None, None)
    if params.top_k:
        logits = logits / params.temperature
        kth = logits.topk(min(params.top_k, logits.shape[-1]), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
        probs = logits.double() if probs is None else probs.copy_(logits)
    elif probs is None:
        probs = (logits / params.temperature).double()
    else:  # the float32 quotient, written as float64 into the buffer (the same bits as the line above)
        torch.div(logits, params.temperature, out=probs)
    probs = probs.softmax(-1) if cdf is None else torch.softmax(probs, -1, out=probs)
    if params.top_p < 1:
        sorted_p, order = probs.sort(-1, descending=True)
        drop = sorted_p.cumsum(-1) - sorted_p >= params.top_p  # keep the smallest set reaching top_p
        probs = probs.scatter(-1, order, sorted_p.masked_fill(drop, 0.0))
    cdf = probs.cumsum(-1) if cdf is None else torch.cumsum(probs, -1, out=cdf)
    u = (uniforms.to(cdf.device) * cdf[:, -1]).unsqueeze(-1)
    idx = torch.searchsorted(cdf, u, right=True).squeeze(-1)
    # float round-off at the top end (u · total rounding up to the total) finds no token (idx = V): take the last
    # token with mass. Any idx < V has mass (cdf[idx] > cdf[idx - 1]), so only those rows need the search.
    over = idx >= cdf.shape[-1]
    if over.any():
        last = (probs[over] > 0).long().cumsum(-1).argmax(-1)
        idx[over] = last
    return idx


def left_pad(prompts: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, attention mask), both (B, P), padded on the left."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, p in enumerate(prompts):
        ids[row, width - len(p):] = torch.tensor(p, dtype=torch.long)
        mask[row, width - len(p):] = 1
    return ids, mask
