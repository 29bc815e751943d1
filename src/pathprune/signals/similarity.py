"""Type I signal (external, not learnable): SlimSC-style redundancy via n-gram Jaccard similarity.

Paths of one problem that repeat each other add little to a vote, so the most
redundant are pruned first. Similarity is the Jaccard index of the prefixes'
token n-gram sets. Scores come from a greedy max-diversity order: first the
path least similar to the others on average, then repeatedly the path whose
highest similarity to those already chosen is lowest (ties: lower path index).
A path's score is minus its position in that order, so top-k by score is
exactly the greedy selection of k diverse paths, for every k.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..engine.batch import rows_by_problem
from ..engine.contract import CheckView, Signal
from ..engine.registry import register_signal
from ..errors import PathpruneError


def ngrams(tokens: list[int], n: int) -> set[tuple[int, ...]]:
    return {tuple(tokens[i:i + n]) for i in range(max(0, len(tokens) - n + 1))} or {tuple(tokens)}


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def diversity_order(prefixes: list[list[int]], n: int) -> list[int]:
    """Indices of ``prefixes`` in greedy max-diversity order."""
    sets = [ngrams(p, n) for p in prefixes]
    return greedy_order([[jaccard(a, b) for b in sets] for a in sets])


def greedy_order(sim: list[list[float]]) -> list[int]:
    """Greedy max-diversity order of m items from their (m, m) similarity matrix (see the module doc)."""
    m = len(sim)
    if m == 1:
        return [0]
    first = min(range(m), key=lambda i: (sum(sim[i][j] for j in range(m) if j != i) / (m - 1), i))
    order, rest = [first], [i for i in range(m) if i != first]
    while rest:
        nxt = min(rest, key=lambda i: (max(sim[i][j] for j in order), i))
        order.append(nxt)
        rest.remove(nxt)
    return order



def diversity_scores(records, order: Callable[[list[int]], list[int]]) -> torch.Tensor:
    """Scores from a greedy diversity order per problem: ``order(rows)`` ranks one problem's rows
    (path-index order); the first picked scores 0, the next -1, ... so top-k is the greedy choice."""
    scores = torch.zeros(len(records))
    for rows in rows_by_problem(records):
        for rank, i in enumerate(order(rows)):
            scores[rows[i]] = -rank
    return scores


@register_signal("jaccard")
class JaccardDiversity(Signal):
    """SlimSC-style diversity: n-gram Jaccard similarity, redundant paths pruned first (`jaccard[:N]`, N=3)."""

    name, source, learnable = "jaccard", "external", False
    needs = frozenset({"text"})

    def __init__(self, arg: str | None = None) -> None:
        try:
            self.n = int(arg) if arg else 3
        except ValueError:
            raise PathpruneError(f"jaccard:N needs an integer n-gram size, got {arg!r}") from None
        if self.n < 1:
            raise PathpruneError(f"jaccard n-gram size must be >= 1, got {self.n}")

    def score(self, view: CheckView) -> torch.Tensor:
        return diversity_scores(view.records, lambda rows: diversity_order([view.records[r].tokens for r in rows],
                                                                           self.n))
