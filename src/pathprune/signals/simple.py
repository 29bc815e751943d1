"""Reference signals that need no training: random, and mean log-probability (Type III)."""

from __future__ import annotations

import zlib

import torch

from ..engine.contract import CheckView, Signal
from ..engine.features import mean_logprob
from ..engine.registry import register_signal
from ..errors import PathpruneError


@register_signal("random")
class RandomSignal(Signal):
    """Uniform random scores: the paper's expected baseline (avg@k|N = avg@N in expectation).

    Seeded per (run seed, stage, problem id, path) so that results do not depend on batching.
    """

    name, source, learnable = "random", "none", False

    def __init__(self, arg: str | None = None) -> None:
        try:
            self.seed = int(arg) if arg else 0
        except ValueError:
            raise PathpruneError(f"random:SEED needs an integer seed, got {arg!r}") from None

    def score(self, view: CheckView) -> torch.Tensor:
        out = []
        for r in view.records:
            problem_id = view.requests[r.problem_index].id
            key = f"{self.seed}:{view.seed}:{view.stage}:{problem_id}:{r.path_index}".encode()
            out.append(torch.rand((), generator=torch.Generator().manual_seed(zlib.crc32(key))).item())
        return torch.tensor(out)


@register_signal("mean_logprob")
class MeanLogprobSignal(Signal):
    """Mean log-probability of the prefix's tokens (negative log-perplexity), from what Launch kept."""

    name, source, learnable = "mean_logprob", "internal", False
    needs = frozenset({"logprobs"})

    def __init__(self, arg: str | None = None) -> None:
        if arg:
            raise PathpruneError("mean_logprob takes no argument")

    def score(self, view: CheckView) -> torch.Tensor:
        return torch.tensor([mean_logprob(r.logprobs) for r in view.records])
