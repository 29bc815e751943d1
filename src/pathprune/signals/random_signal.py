"""The reference that any signal must beat: random scores (no information, per-path reproducible)."""

from __future__ import annotations

import zlib

import torch

from ..engine.contract import CheckView, Signal
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
