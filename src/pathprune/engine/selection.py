"""Which paths survive a checkpoint, and the vote over the survivors: one definition each.

Both the engine (live rows) and offline evaluation (logged scores) call
:func:`select_kept`, so a setting read off the logs keeps exactly the paths a
pruned run keeps.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence


def tie_key(score: float) -> float:
    """Scores equal to 5 significant digits tie: paths with identical prefixes get scores that
    differ only by float noise (~1e-7, from the batch layout), which must not decide the ranking.
    (Noise straddling a rounding boundary can still split a tie; that is rare.)"""
    return float(f"{score:.5g}")


def ranked(candidates: Sequence[tuple[int, float]]) -> list[tuple[int, float]]:
    """``(path_index, score)`` candidates best first: higher score (ties to 5 significant digits), then
    the lower path index. The one ranking rule of pruning."""
    return sorted(candidates, key=lambda c: (-tie_key(c[1]), c[0]))


def select_kept(candidates: Sequence[tuple[int, float]], keep: int | None = None,
                threshold: float | None = None) -> list[int]:
    """Path indices kept among one problem's ``(path_index, score)`` candidates, in index order.

    Top-``keep`` by score, or every path scoring at least ``threshold`` (at least one);
    ties go to the lower path index.
    """
    order = ranked(candidates)
    if keep is not None:
        chosen = order[:keep]
    else:
        chosen = [c for c in order if c[1] >= threshold] or order[:1]
    return sorted(index for index, _ in chosen)


def majority(answers: list[str | None]) -> str | None:
    """The most common answer (ties: the one seen first); None when no path has an answer."""
    counts = Counter(a for a in answers if a is not None)
    return counts.most_common(1)[0][0] if counts else None
