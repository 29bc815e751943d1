"""Pure numeric helpers on scores and labels (a leaf module: ``stop`` and ``evaluation`` both use them).

Defined exactly (tests check them against hand-computed cases):

* :func:`auroc`: probability that a random positive outscores a random negative,
  ties counting one half (the Mann–Whitney statistic); None without both classes.
* :func:`within_problem_auroc`: the mean of per-problem AUROCs over problems whose
  paths contain both classes; this is what top-k pruning inside a problem needs
  (a pooled AUROC can be high from problem difficulty alone).
* :func:`spearman`: rank correlation on average ranks (:func:`average_ranks`); None if a side is constant.
* :func:`brier`: mean (p - y)^2 against binary outcomes; :func:`mse` against soft labels.
* :func:`ece`: expected calibration error, |mean p - mean label| per equal-width bin,
  weighted by bin size.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence


def average_ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks of ``values``, ties sharing their average rank (O(n log n))."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def auroc(scores: Sequence[float], labels: Sequence[int]) -> float | None:
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    if not pos or not neg:
        return None
    rank_sum = sum(r for r, y in zip(average_ranks(scores), labels) if y)
    return (rank_sum - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))


def spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman rank correlation (Pearson's on average ranks); None when either side is constant."""
    ra, rb = average_ranks(a), average_ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    va, vb = sum((x - ma) ** 2 for x in ra), sum((y - mb) ** 2 for y in rb)
    return cov / (va * vb) ** 0.5 if va and vb else None


def within_problem_auroc(scores: Sequence[float], labels: Sequence[int], groups: Sequence) -> float | None:
    by_group: dict = defaultdict(lambda: ([], []))
    for s, y, g in zip(scores, labels, groups):
        by_group[g][0].append(s)
        by_group[g][1].append(y)
    values = [a for s, y in by_group.values() if (a := auroc(s, y)) is not None]
    return sum(values) / len(values) if values else None


def mse(probs: Sequence[float], targets: Sequence[float]) -> float:
    return sum((p - t) ** 2 for p, t in zip(probs, targets)) / max(1, len(probs))


def brier(probs: Sequence[float], outcomes: Sequence[int]) -> float:
    return mse(probs, [float(o) for o in outcomes])


def ece(probs: Sequence[float], targets: Sequence[float], bins: int = 10) -> float:
    buckets: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for p, t in zip(probs, targets):
        buckets[min(int(p * bins), bins - 1)].append((p, t))
    n = max(1, len(probs))
    return sum(len(b) / n * abs(sum(p for p, _ in b) / len(b) - sum(t for _, t in b) / len(b))
               for b in buckets.values())
