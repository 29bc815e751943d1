"""Equal-budget baselines and where pruning fails, from an evaluation's finished paths.

The practitioner's question is not "does pruning N → k beat finishing all N?" but "for the same
tokens, does pruning beat sampling fewer paths and voting (self-consistency)?". Everything here is
read off the same logs as :mod:`.summary` (a problem's value is the mean over its seeds; 95 %
intervals resample problems).

* :func:`self_consistency` — cons@n for n = 1..N: the majority vote of n of the N finished paths
  drawn at random (no pruning), averaged over subsets: every subset when there are at most
  ``draws`` of them, else ``draws`` seeded random orders of the paths (the first n of an order is a
  random n-subset; one order serves every n). Its tokens are exact: n/N of the unit's tokens.
* :func:`versus_self_consistency` — a pruned setting's cons against self-consistency at the
  **same mean tokens per problem**, interpolated linearly between the two nearest n (n* = pruned
  tokens / mean path tokens). The interpolation is an achievable baseline, not an optimistic one:
  running n⌊·⌋ or n⌈·⌉ paths at random, in the right proportions, costs exactly those tokens and
  scores exactly the interpolated accuracy. The gain is paired by problem (same paths).
* :func:`equal_budget` — both, for every pruned setting, with its "lost" problems (some launched path was
  right, no kept path was) and the problems whose vote pruning turned right ("fixed") or wrong ("broken")
  against the unpruned N-path vote.
* :func:`worst_problems` — the problems lost by the most signals, with each signal's ranking of
  their best right path.
* :func:`pruned_subsets` — a pruned configuration with fewer paths than the run launched (N' of the
  N, k' kept), for checking a recommended γ on a user's own run.
"""

from __future__ import annotations

import math
import zlib
from itertools import combinations

import numpy as np

from ..engine.selection import ranked
from ..tasks.grading import answers_equal
from .offline import ProblemOutcome, Setting, outcome
from .summary import ByProblem

DRAWS = 200
"""Random subsets per (unit, n) when there are more than this many subsets."""


def _answer_codes(unit: dict, paths: list[dict]) -> tuple[list[int], list[bool]]:
    """Per path an answer code (−1: no answer), and per code whether the answer is right."""
    codes: dict[str, int] = {}
    out = [-1 if p["answer"] is None else codes.setdefault(p["answer"], len(codes)) for p in paths]
    kind = unit.get("answer_kind", "math")
    right = [False] * len(codes)
    for answer, code in codes.items():
        right[code] = answers_equal(unit["reference"], answer, kind)
    return out, right


def _prefix_votes(order, codes: list[int], right: list[bool]) -> list[bool]:
    """Whether the vote of the first n paths of ``order`` is right, for every n.

    The rule is the engine's ``majority`` over paths in index order (most votes; ties to the
    answer of the earliest path; no answers: wrong), kept incrementally so one order costs O(N).
    """
    counts: dict[int, int] = {}
    first: dict[int, int] = {}
    leader, out = -1, []
    for i in order:
        a = codes[i]
        if a >= 0:
            counts[a] = counts.get(a, 0) + 1
            first[a] = min(first.get(a, i), i)
            if leader < 0 or (a != leader and (counts[a], -first[a]) > (counts[leader], -first[leader])):
                leader = a
        out.append(leader >= 0 and right[leader])
    return out


def unit_self_consistency(unit: dict, paths: list[dict], draws: int = DRAWS, seed: int = 0) -> np.ndarray:
    """cons@n of one (problem, seed) unit for n = 1..N (index n − 1)."""
    paths = sorted(paths, key=lambda p: p["path_index"])
    codes, right = _answer_codes(unit, paths)
    n_paths = len(paths)
    acc = np.zeros(n_paths)
    sampled = [n for n in range(1, n_paths + 1) if math.comb(n_paths, n) > draws]
    if sampled:  # seeded by the unit alone, so a unit's curve does not depend on the other units
        rng = np.random.default_rng([seed, zlib.crc32(unit["unit_id"].encode())])
        acc += np.mean([_prefix_votes(rng.permutation(n_paths), codes, right) for _ in range(draws)], axis=0)
    for n in sorted(set(range(1, n_paths + 1)) - set(sampled)):
        acc[n - 1] = np.mean([_prefix_votes(c, codes, right)[-1] for c in combinations(range(n_paths), n)])
    return acc


class SelfConsistency:
    """Self-consistency cons@n and tokens per problem for n = 1..N, with bootstrap intervals."""

    def __init__(self, units: list[dict], paths: dict[str, list[dict]], n_boot: int = 1000, seed: int = 0,
                 draws: int = DRAWS):
        self.by = ByProblem(units, n_boot, seed)
        self.n_paths = min(len(paths[u["unit_id"]]) for u in units)
        curves = [unit_self_consistency(u, paths[u["unit_id"]], draws, seed)[: self.n_paths] for u in units]
        self.cons = self.by.mean(curves)  # problems × N
        self.path_tokens = self.by.mean([sum(p["tokens"] for p in paths[u["unit_id"]]) / len(paths[u["unit_id"]])
                                         for u in units])
        """Mean tokens of one finished path, per problem: n paths cost n times this."""

    def rows(self) -> list[dict]:
        tokens = float(self.path_tokens.mean())
        return [{"n": n, "tokens": n * tokens, "cons": float(self.cons[:, n - 1].mean()),
                 "cons_ci": self.by.interval(self.cons[:, n - 1])} for n in range(1, self.n_paths + 1)]

    def at_tokens(self, tokens: float) -> tuple[float, np.ndarray, bool]:
        """(n*, per-problem cons at n*, clamped) for a mean budget of ``tokens`` per problem.

        n* = tokens / mean path tokens; cons is linear between ⌊n*⌋ and ⌈n*⌉. Outside [1, N]
        it is clamped (``clamped`` True): self-consistency cannot be read off these paths there.
        """
        raw = tokens / float(self.path_tokens.mean())
        n_star = min(max(raw, 1.0), float(self.n_paths))
        lo = int(math.floor(n_star))
        hi = min(lo + 1, self.n_paths)
        w = n_star - lo
        return n_star, (1 - w) * self.cons[:, lo - 1] + w * self.cons[:, hi - 1], raw != n_star


def versus_self_consistency(sc: SelfConsistency, cons: np.ndarray, tokens: np.ndarray) -> dict:
    """A pruned configuration's per-problem cons and tokens against self-consistency at equal mean tokens."""
    n_star, base, clamped = sc.at_tokens(float(tokens.mean()))
    gain = cons - base
    return {"tokens": float(tokens.mean()), "cons": float(cons.mean()), "sc_n": n_star,
            "sc_tokens": n_star * float(sc.path_tokens.mean()), "sc_cons": float(base.mean()),
            "gain": float(gain.mean()), "gain_ci": sc.by.interval(gain), "clamped": clamped}


def _failure_shares(by: ByProblem, units: list[dict], paths: dict[str, list[dict]], outs: list[ProblemOutcome],
                    base: list[bool]) -> dict:
    """Lost (a launched path right, no kept one), fixed and broken (vote vs the unpruned ``base`` vote)."""
    flags = by.mean([(any(p["correct"] for p in paths[u["unit_id"]]) and not o.any_correct,
                      o.vote_correct and not b, b and not o.vote_correct) for u, o, b in zip(units, outs, base)])
    return {"lost": float(flags[:, 0].mean()), "lost_ci": by.interval(flags[:, 0]),
            "fixed": float(flags[:, 1].mean()), "broken": float(flags[:, 2].mean())}


def equal_budget(units: list[dict], paths: dict[str, list[dict]], settings: list[Setting], n_boot: int = 1000,
                 seed: int = 0, draws: int = DRAWS) -> dict:
    """The self-consistency curve, and per pruned setting its equal-token comparison and failure shares."""
    sc = SelfConsistency(units, paths, n_boot, seed, draws)
    base = [outcome(u, paths[u["unit_id"]], Setting(None)).vote_correct for u in units]
    per_setting = {}
    for s in settings:
        if s.signal is None:
            continue
        outs = [outcome(u, paths[u["unit_id"]], s) for u in units]
        per_setting[s.label] = {**versus_self_consistency(sc, sc.by.mean([float(o.vote_correct) for o in outs]),
                                                          sc.by.mean([o.usage.generated for o in outs])),
                                **_failure_shares(sc.by, units, paths, outs, base)}
    return {"self_consistency": sc.rows(), "settings": per_setting}


def worst_problems(units: list[dict], paths: dict[str, list[dict]], signals: list[str], prefix: int, keep: int,
                   limit: int = 5) -> list[dict]:
    """The (problem, seed) units lost by the most signals at ``prefix:keep`` (then: most right paths).

    Per signal: right paths kept, whether the vote is right, the rank (1 = best) and score of the
    best right path among the paths live at the checkpoint, and the score of the last kept one.
    """
    found = []
    for u in units:
        ps = sorted(paths[u["unit_id"]], key=lambda p: p["path_index"])
        right = sum(bool(p["correct"]) for p in ps)
        if not right:
            continue
        rows = []
        for name in signals:
            o = outcome(u, ps, Setting(name, prefix, keep))
            by_index = {p["path_index"]: p for p in ps}
            live = ranked([(p["path_index"], p["signals"][name][str(prefix)][0])
                           for p in ps if str(prefix) in p["signals"].get(name, {})])
            best = next(((r + 1, s) for r, (i, s) in enumerate(live) if by_index[i]["correct"]), (None, None))
            rows.append({"signal": name, "lost": not o.any_correct, "kept_right": sum(o.correct),
                         "kept": len(o.kept), "vote_correct": o.vote_correct, "best_right_rank": best[0],
                         "best_right_score": best[1], "cutoff_score": live[keep - 1][1] if len(live) >= keep else None})
        lost_by = [r["signal"] for r in rows if r["lost"]]
        if lost_by:
            found.append({"unit_id": u["unit_id"], "problem_id": u["problem_id"], "reference": u["reference"],
                          "right": right, "paths": len(ps),
                          "vote_correct": outcome(u, ps, Setting(None)).vote_correct,
                          "lost_by": lost_by, "signals": rows})
    found.sort(key=lambda w: (-len(w["lost_by"]), -w["right"], w["unit_id"]))
    return found[:limit]


def pruned_subsets(units: list[dict], paths: dict[str, list[dict]], setting: Setting, n_paths: int,
                   draws: int = 50, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-problem cons and tokens of ``setting`` run on ``n_paths`` of each unit's N paths, drawn at random.

    A pruned run with fewer paths is the same run on a random subset of them (the engine's
    per-path random streams make paths independent of which others were launched).
    """
    by = ByProblem(units)
    cons, tokens = [], []
    for u in units:
        ps = sorted(paths[u["unit_id"]], key=lambda p: p["path_index"])
        rng = np.random.default_rng([seed, zlib.crc32(u["unit_id"].encode()), n_paths])
        outs = [outcome(u, [ps[i] for i in sorted(rng.choice(len(ps), n_paths, replace=False))], setting)
                for _ in range(draws)]
        cons.append(np.mean([o.vote_correct for o in outs]))
        tokens.append(np.mean([o.usage.generated for o in outs]))
    return by.mean(cons), by.mean(tokens)
