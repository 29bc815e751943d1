"""Turn one prompt's kept paths into an answer and the path that carries it.

``majority``: one vote per kept path with an answer (the engine's vote).
``score_weighted``: each kept path votes with its score at the last checkpoint
it passed. Scores of signals that can be negative (log-probabilities) are
shifted so the lowest is 0; paths that ended before any checkpoint (no score)
vote with the mean weight of the scored ones; with no scores at all it is the
majority vote. Ties go to the answer whose first voter has the lowest path index.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..engine.pruner import PathOutput


@dataclass
class Vote:
    answer: str | None
    path: PathOutput
    """The path returned as the response: the best-scored kept path with the voted answer."""
    weights: dict[str, float]
    """Total vote weight per answer."""


def _weights(kept: list[PathOutput], how: str) -> list[float]:
    if how == "majority" or not any(p.scores for p in kept):
        return [1.0] * len(kept)
    scored = [p.scores[-1] for p in kept if p.scores]
    finite = [s for s in scored if s != float("-inf")]
    shift = -min(0.0, min(finite)) if finite else 0.0
    raw = [max(0.0, p.scores[-1] + shift) if p.scores else None for p in kept]
    known = [w for w in raw if w is not None]
    fill = sum(known) / len(known)
    return [fill if w is None else w for w in raw]


def vote(paths: list[PathOutput], how: str = "majority") -> Vote:
    """The voted answer of ``paths`` (all paths of one prompt, pruned ones included)."""
    kept = sorted((p for p in paths if p.kept), key=lambda p: p.index)
    totals: dict[str, float] = {}
    for p, w in zip(kept, _weights(kept, how)):
        if p.answer is not None:
            totals[p.answer] = totals.get(p.answer, 0.0) + w
    answer = max(totals, key=totals.get) if totals else None  # max keeps the first of equal totals
    carriers = [p for p in kept if p.answer == answer] or kept
    best = max(carriers, key=lambda p: (p.scores[-1] if p.scores else float("-inf"), -p.index))
    return Vote(answer, best, totals)
