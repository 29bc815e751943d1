"""Paper metrics per pruning setting, with 95 % bootstrap intervals over problems.

For a setting ``L:k`` over N paths (definitions tested against hand-computed cases):

* ``avg`` — avg@k|N: per problem, the mean correctness of its kept paths, averaged over
  problems (with no pruning it is avg@N); paths that ended before L are kept and count;
* ``cons`` — cons@k: per problem, whether the majority vote of the kept paths' answers is
  right (ties: the earliest path), averaged (cons@N without pruning);
* ``pass`` — pass@k: whether any kept path is right;
* ``tokens`` — the paper's total tokens per problem (every generated token, pruned prefixes
  included; prompts, check and re-encoding tokens reported beside it);
* ``delta`` — Δ = (Tok_orig − Tok_pruned) / Tok_orig against no pruning on the same paths.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..engine.accounting import TokenUsage
from .offline import ProblemOutcome, Setting, outcome

METRICS: dict[str, Callable[[ProblemOutcome], float]] = {
    "avg": lambda o: o.avg,
    "cons": lambda o: float(o.vote_correct),
    "pass": lambda o: float(o.any_correct),
    "tokens": lambda o: float(o.usage.generated),
}
"""Per-problem metrics; dataset values are their means over problems."""


def bootstrap_mean(values: np.ndarray, draws: np.ndarray) -> tuple[float, float]:
    """95 % percentile interval of the mean under the given resampling index matrix."""
    means = values[draws].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


class ByProblem:
    """Per-problem means over a problem's seeds, and the bootstrap that resamples problems.

    Seeds of one problem are not independent, so a problem's value is the mean over its
    (problem, seed) units and the 95 % intervals resample problems.
    """

    def __init__(self, units: list[dict], n_boot: int = 1000, seed: int = 0):
        self.problems = sorted({u["problem_id"] for u in units})
        index = {pid: i for i, pid in enumerate(self.problems)}
        self.owner = np.array([index[u["problem_id"]] for u in units])
        self.weight = 1 / np.bincount(self.owner, minlength=len(self.problems))[self.owner]
        self.draws = np.random.default_rng(seed).integers(0, len(self.problems), size=(n_boot, len(self.problems)))

    def mean(self, values) -> np.ndarray:
        """Per-unit values (or rows of them) -> per-problem means, problems along the first axis."""
        values = np.asarray(values, dtype=float)
        out = np.zeros((len(self.problems), *values.shape[1:]))
        np.add.at(out, self.owner, values * self.weight.reshape(-1, *[1] * (values.ndim - 1)))
        return out

    def interval(self, per_problem: np.ndarray) -> tuple[float, float]:
        return bootstrap_mean(per_problem, self.draws)


def summarise(units: list[dict], paths: dict[str, list[dict]], settings: list[Setting],
              n_boot: int = 1000, seed: int = 0) -> list[dict]:
    """One row per setting: metrics, intervals, token breakdown and Δ against no pruning.

    ``units`` are (problem, seed) runs keyed by ``unit_id``; a problem's metric is the mean over
    its seeds, and the bootstrap resamples problems (seeds of one problem are not independent).
    """
    if not units:
        return []
    by = ByProblem(units, n_boot, seed)
    problems, per_problem, draws = by.problems, by.mean, by.draws
    base = per_problem([sum(p["tokens"] for p in paths[u["unit_id"]]) for u in units])
    rows = []
    for setting in settings:
        outs = [outcome(u, paths[u["unit_id"]], setting) for u in units]
        row: dict = {"signal": setting.signal or "none", "prefix": setting.prefix, "keep": setting.keep,
                     "label": setting.label, "problems": len(problems), "units": len(units)}
        for name, fn in METRICS.items():
            values = per_problem([fn(o) for o in outs])
            row[name] = float(values.mean())
            row[f"{name}_ci"] = bootstrap_mean(values, draws)
        tokens = per_problem([o.usage.generated for o in outs])
        row["delta"] = float(1 - tokens.sum() / base.sum())
        deltas = 1 - tokens[draws].sum(axis=1) / base[draws].sum(axis=1)
        row["delta_ci"] = (float(np.percentile(deltas, 2.5)), float(np.percentile(deltas, 97.5)))
        row["usage"] = sum((o.usage for o in outs), TokenUsage()).as_dict()
        row["seconds"] = _seconds(units, setting)
        rows.append(row)
    return rows


def _seconds(units: list[dict], setting: Setting) -> dict:
    """Measured wall time of the shared run that this setting's numbers come from."""
    if setting.signal is None:
        return {"all_paths": round(sum(u["seconds"]["all_paths"] for u in units), 3)}
    return {"launch": round(sum(u["seconds"]["launch"].get(str(setting.prefix), 0.0) for u in units), 3),
            "check": round(sum(u["seconds"]["check"].get(setting.signal, {}).get(str(setting.prefix), 0.0)
                                   for u in units), 3)}


def signal_quality(units: list[dict], paths: dict[str, list[dict]], signals: list[str], label_signal: str,
                   prefix: int) -> list[dict]:
    """AUROC of each signal's scores against the Monte-Carlo label of the same prefixes.

    ``label_signal`` is an ``oracle`` signal of the same run (its score is the fraction of K
    continuations that end right); the label is binarised at 0.5. "within" is the mean AUROC
    inside each (problem, seed) unit, what top-k pruning needs.
    """
    from ..stats import auroc, within_problem_auroc

    key, rows = str(prefix), []
    for name in signals:
        scores, labels, groups = [], [], []
        for u in units:
            for p in paths[u["unit_id"]]:
                entry, label = p["signals"].get(name, {}).get(key), p["signals"].get(label_signal, {}).get(key)
                if entry is not None and label is not None:
                    scores.append(entry[0])
                    labels.append(int(label[0] >= 0.5))
                    groups.append(u["unit_id"])
        rows.append({"signal": name, "prefixes": len(scores), "auroc": auroc(scores, labels),
                     "within_auroc": within_problem_auroc(scores, labels, groups)})
    return rows


def paired_gain(units: list[dict], paths: dict[str, list[dict]], a: Setting, b: Setting, metric: str = "avg",
                n_boot: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """Mean per-problem difference metric(a) − metric(b) on the same paths, with its 95 % bootstrap interval."""
    fn = METRICS[metric]
    by = ByProblem(units, n_boot, seed)
    per = by.mean([fn(outcome(u, paths[u["unit_id"]], a)) - fn(outcome(u, paths[u["unit_id"]], b)) for u in units])
    lo, hi = by.interval(per)
    return float(per.mean()), lo, hi
