"""How well each signal ranks a problem's paths by how they end, and the best any prefix scorer could do.

An evaluation run scores every launched path at each checkpoint L and then finishes it, so each score can be set
against whether that path ended right: the question top-k pruning asks inside one problem.

* :func:`outcome_auroc`: per signal, the within-problem AUROC of its scores at L against the paths' outcomes
  (the mean over problems of each problem's AUROC; problems whose live paths all end right or all wrong carry
  none, paths that ended before L carry no score), with a 95 % interval that resamples problems.
* The **prefix ceiling**: a scorer sees only the prefix, so paths sharing their first L tokens must get one
  score. The best within-problem AUROC any prefix-level scorer can reach groups a problem's live paths by
  identical prefix and orders the groups by their in-sample share of right outcomes (ties inside a group count
  one half, as any scorer's must). Each signal is also reported as its share of the ceiling's gain over
  chance, (AUROC − 0.5) / (ceiling − 0.5): 0 is random, 1 is all a prefix can tell.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from ..stats import auroc
from .offline import checked_length
from .summary import ByProblem

CEILING = "prefix ceiling"


def _live(paths: list[dict], signal: str, key: str) -> list[dict]:
    """The paths ``signal`` scored at checkpoint ``key`` (those live there)."""
    return [p for p in paths if p["signals"].get(signal, {}).get(key) is not None]


def live_prefixes(paths: list[dict], prefix: int | str, live_signal: str) -> tuple[list[dict], list[tuple]] | None:
    """The paths live at ``prefix`` (those ``live_signal`` scored) and each one's first ``prefix`` tokens, what a
    prefix scorer sees; None when the run did not record token ids."""
    live = _live(paths, live_signal, str(prefix))
    if any("token_ids" not in p for p in live):
        return None
    return live, [tuple(p["token_ids"][:checked_length(p, prefix)]) for p in live]


def ceiling_scores(paths: list[dict], prefix: int | str, live_signal: str) -> list[tuple[float, int]] | None:
    """(score, outcome) of the paths live at ``prefix`` (those ``live_signal`` scored) under the ideal prefix
    scorer: the share of right outcomes among the problem's live paths with the same first ``prefix`` tokens.
    None when the run did not record token ids."""
    if (seen := live_prefixes(paths, prefix, live_signal)) is None:
        return None
    live, prefixes = seen
    groups: dict[tuple, list[int]] = defaultdict(list)
    for ids, p in zip(prefixes, live):
        groups[ids].append(int(p["correct"]))
    return [(float(np.mean(groups[ids])), int(p["correct"])) for ids, p in zip(prefixes, live)]


def _row(name: str, units: list[dict], per_unit: list[float | None], n_boot: int, seed: int) -> dict:
    kept = [(u, a) for u, a in zip(units, per_unit) if a is not None]
    if not kept:
        return {"signal": name, "problems": 0, "within_auroc": None, "ci95": [None, None]}
    by = ByProblem([u for u, _ in kept], n_boot, seed)
    per_problem = by.mean([a for _, a in kept])
    lo, hi = by.interval(per_problem)
    return {"signal": name, "problems": len(by.problems), "within_auroc": float(per_problem.mean()),
            "ci95": [lo, hi]}


def outcome_auroc(units: list[dict], paths: dict[str, list[dict]], signals: list[str], prefix: int,
                  n_boot: int = 1000, seed: int = 0) -> list[dict]:
    """One row per signal at checkpoint ``prefix`` (within-problem AUROC against outcomes, 95 % interval,
    problems counted, share of the ceiling's gain), then the prefix ceiling's own row (when token ids were
    recorded). Problems: those where the signal's live paths hold both outcomes; a problem's value is the mean
    over its seeds."""
    key = str(prefix)
    rows = []
    for name in signals:
        per_unit = [auroc([p["signals"][name][key][0] for p in live], [int(p["correct"]) for p in live])
                    if (live := _live(paths[u["unit_id"]], name, key)) else None for u in units]
        rows.append({**_row(name, units, per_unit, n_boot, seed), "prefix": prefix})
    ceiling = None
    if signals:
        scored = [ceiling_scores(paths[u["unit_id"]], prefix, signals[0]) for u in units]
        if all(s is not None for s in scored):
            per_unit = [auroc(*zip(*s)) if s else None for s in scored]
            ceiling = {**_row(CEILING, units, per_unit, n_boot, seed), "prefix": prefix}
    top = ceiling["within_auroc"] if ceiling else None
    for r in rows:
        a = r["within_auroc"]
        r["share_of_ceiling"] = (a - 0.5) / (top - 0.5) if a is not None and top is not None and top > 0.5 else None
    return rows + ([ceiling] if ceiling else [])
