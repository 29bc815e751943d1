"""The deployment scaling law of the STOP paper (Eq. 7, App. E): which retention ratio γ = k/N to use.

    γ⁻¹ = a · C^b · L_prefix^c / L_task^d        (a ≈ 1.17e4, b ≈ 0.46, c ≈ 0.40, d ≈ 4.55)

Units
    Every argument of this module's API is a **token count** (C, L_prefix, L_task).
    The law itself takes them in units of :data:`UNIT` = 1,024 tokens, so each
    is divided by 1,024 before the power law is applied. This is what the paper's
    Tables 14–15 do: their "140k" column is C = 140 units = 143,360 tokens, and
    L_task ≈ 8,650 tokens is 8,650 / 1,024 = 8.447 units (with those conventions
    all 90 cells reproduce to two decimals; with 1k = 1,000 none do).
    :func:`parse_tokens` reads the same notation: ``"140k"`` = 140 × 1,024.

    C is the total compute budget of one query in tokens: everything generated
    for it, i.e. the N discarded and kept prefixes plus the kept paths'
    continuations. Under the engine's accounting, a run with N paths, checkpoint
    L_prefix and k = γN kept paths of mean length L_task spends about
    ``N·L_prefix + k·(L_task − L_prefix)`` tokens (:func:`budget_cost`), so a
    budget affords ``N = C / (L_prefix + γ·(L_task − L_prefix))`` paths
    (:func:`paths_for_budget`). That cost model is pathprune's reading of the
    paper's "total tokens" (Table 2's STOP totals fit it), not a formula the
    paper states.

    L_task is the task's reference response length: the mean length in tokens
    of a complete (unpruned) path on that task, e.g. total tokens / N of the
    no-pruning baseline.

γ and k
    The law can return γ⁻¹ < 1 (short budgets, long tasks): that means "keep
    everything", so :func:`retention` clips γ to (0, 1]. For N paths,
    :func:`keep_for` turns γ into k = round(γ·N) (halves round up), clipped to
    [1, N]: at least one path is always finished.

Fitting
    :func:`fit` solves ``log γ⁻¹ = log a + b·log C + c·log L_prefix − d·log L_task``
    (natural logs, inputs in 1,024-token units) by ordinary least squares and
    reports R² and per-point residuals in that log space. A point is
    (C, L_prefix, L_task, γ*) where γ* is the best retention ratio found by a
    γ sweep at that budget (:func:`envelope_points` picks it from sweep
    records). Points files are JSONL (:data:`POINTS_FILE`, see
    :func:`load_points` and docs/law.md).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import PathpruneError
from ..io.atomic import write_json_atomic

UNIT = 1024
"""Tokens per law unit (the paper's "k")."""
POINTS_FILE = "law_points.jsonl"
"""The per-run-directory file of sweep points read by :func:`fit_from_runs`."""
FORMAT = "pathprune-law/1"
NAMES = ("a", "b", "c", "d")
_VARIABLE = {"b": "budget C", "c": "prefix length L_prefix", "d": "task length L_task"}


@dataclass
class LawConstants:
    """The four constants of γ⁻¹ = a·C^b·L_prefix^c / L_task^d, with how they were obtained."""

    a: float
    b: float
    c: float
    d: float
    r2: float | None = None
    """Coefficient of determination of log γ⁻¹ (None: not fitted, or γ* never varied)."""
    residuals: list[float] = field(default_factory=list)
    """Per point, observed − fitted log γ⁻¹ (natural log), in input order."""
    n_points: int = 0
    source: str = "paper"
    fixed: list[str] = field(default_factory=list)
    """Constants held at given values rather than fitted."""
    ranges: dict[str, list[float]] | None = None
    """Token ranges [min, max] of the fitting data per input (budget, prefix, task); None for the paper."""

    @property
    def rmse(self) -> float | None:
        """Root-mean-square log residual (0.1 ≈ 10 % typical error in γ)."""
        if not self.residuals:
            return None
        return math.sqrt(sum(r * r for r in self.residuals) / len(self.residuals))

    def to_json(self) -> dict:
        return {"format": FORMAT, "unit_tokens": UNIT, **asdict(self)}

    def save(self, path: str | Path) -> Path:
        """Write as JSON atomically (a temporary file in the same directory, then rename)."""
        path = Path(path)
        if path.parent and not path.parent.exists():
            raise PathpruneError(f"cannot write {path}: directory {path.parent} does not exist", parameter="out")
        return write_json_atomic(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> LawConstants:
        """Read a constants file written by :meth:`save`; a one-line error for anything else."""
        path = Path(path)
        if not path.is_file():
            raise PathpruneError(f"law constants file not found: {path}", parameter="constants")
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise PathpruneError(f"{path} is not a law constants file: invalid JSON ({_one_line(err)})",
                                 parameter="constants") from None
        if not isinstance(data, dict):
            raise PathpruneError(f"{path} is not a law constants file: expected a JSON object",
                                 parameter="constants")
        if data.get("format", FORMAT) != FORMAT:
            raise PathpruneError(f"{path}: unknown format {data.get('format')!r} (expected {FORMAT!r})",
                                 parameter="constants")
        if data.get("unit_tokens", UNIT) != UNIT:
            raise PathpruneError(f"{path}: unit_tokens is {data.get('unit_tokens')!r}; only {UNIT} is supported",
                                 parameter="constants")
        vals = {}
        for name in NAMES:
            v = data.get(name)
            if not _is_number(v):
                raise PathpruneError(f"{path}: constant {name!r} is missing or not a finite number", parameter="constants")
            vals[name] = float(v)
        if vals["a"] <= 0:
            raise PathpruneError(f"{path}: constant 'a' must be positive, got {vals['a']}", parameter="constants")
        r2 = data.get("r2")
        if r2 is not None and not _is_number(r2):
            raise PathpruneError(f"{path}: r2 must be a number or null", parameter="constants")
        residuals = data.get("residuals", [])
        if not isinstance(residuals, list) or not all(_is_number(r) for r in residuals):
            raise PathpruneError(f"{path}: residuals must be a list of numbers", parameter="constants")
        n_points = data.get("n_points", 0)
        if not isinstance(n_points, int) or isinstance(n_points, bool) or n_points < 0:
            raise PathpruneError(f"{path}: n_points must be a non-negative integer", parameter="constants")
        fixed = data.get("fixed", [])
        if not isinstance(fixed, list) or not all(f in NAMES for f in fixed):
            raise PathpruneError(f"{path}: fixed must be a list of constant names", parameter="constants")
        ranges = data.get("ranges")
        if ranges is not None and not (isinstance(ranges, dict) and all(
                isinstance(v, list) and len(v) == 2 and all(_is_number(x) for x in v) for v in ranges.values())):
            raise PathpruneError(f"{path}: ranges must map names to [min, max]", parameter="constants")
        return cls(**vals, r2=None if r2 is None else float(r2), residuals=[float(r) for r in residuals],
                   n_points=n_points, source=str(data.get("source", path.name)), fixed=list(fixed), ranges=ranges)


PAPER = LawConstants(a=1.17e4, b=0.46, c=0.40, d=4.55, source="paper")
"""The paper's constants (Eq. 7), fitted on DS-Qwen-2.5-1.5B, AIME 2024 and GPQA-Diamond."""


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split())


def _check_tokens(value, name: str) -> float:
    if not _is_number(value) or value <= 0:
        raise PathpruneError(f"{name} must be a positive number of tokens, got {value!r}", parameter=name)
    return float(value)


def parse_tokens(text: str | int | float, name: str = "tokens") -> float:
    """A token count: ``8650``, ``"8650"``, or with the paper's suffixes ``"140k"`` (× 1,024), ``"1M"`` (× 1,024²)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return _check_tokens(text, name)
    s = str(text).strip().replace(",", "").replace("_", "")
    scale = 1
    if s[-1:] in ("k", "K"):
        s, scale = s[:-1], UNIT
    elif s[-1:] in ("m", "M"):
        s, scale = s[:-1], UNIT * UNIT
    try:
        value = float(s) * scale
    except ValueError:
        raise PathpruneError(f"{name} must be a token count such as 8650 or 140k (k = 1,024 tokens), got {text!r}",
                             parameter=name) from None
    return _check_tokens(value, name)


def gamma_inverse(budget_tokens: float, prefix_tokens: float, task_tokens: float,
                  constants: LawConstants = PAPER) -> float:
    """The law's raw γ⁻¹ (unclipped; may be below 1). Inputs in tokens."""
    C = _check_tokens(budget_tokens, "budget") / UNIT
    P = _check_tokens(prefix_tokens, "prefix") / UNIT
    T = _check_tokens(task_tokens, "task_length") / UNIT
    k = constants
    return k.a * C ** k.b * P ** k.c / T ** k.d


def retention(budget_tokens: float, prefix_tokens: float, task_tokens: float,
              constants: LawConstants = PAPER) -> float:
    """The recommended retention ratio γ = k/N, clipped to (0, 1] (γ⁻¹ < 1 means: do not prune)."""
    return min(1.0, 1.0 / gamma_inverse(budget_tokens, prefix_tokens, task_tokens, constants))


def keep_for(n: int, gamma: float) -> int:
    """Paths to keep out of ``n`` at retention ``gamma``: round(γ·n), halves up, clipped to [1, n]."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise PathpruneError(f"paths must be a positive integer, got {n!r}", parameter="paths")
    if not _is_number(gamma) or not 0 < gamma <= 1:
        raise PathpruneError(f"gamma must be in (0, 1], got {gamma!r}", parameter="gamma")
    return max(1, min(n, math.floor(gamma * n + 0.5 + 1e-9)))


def budget_cost(n: int, keep: int, prefix_tokens: float, task_tokens: float) -> float:
    """Tokens a query spends: N prefixes of L_prefix, k of them continued to L_task (when L_prefix < L_task)."""
    return n * prefix_tokens + keep * max(0.0, task_tokens - prefix_tokens)


def paths_for_budget(budget_tokens: float, prefix_tokens: float, task_tokens: float, gamma: float) -> int:
    """The N a budget affords at retention γ under :func:`budget_cost` (at least 1)."""
    per_path = prefix_tokens + gamma * max(0.0, task_tokens - prefix_tokens)
    return max(1, math.floor(budget_tokens / per_path + 1e-9))


# ---------------------------------------------------------------------------------------------- fitting


@dataclass(frozen=True)
class LawPoint:
    """One fitting point: at budget C, checkpoint L_prefix and task length L_task (tokens), γ* was best."""

    budget_tokens: float
    prefix_tokens: float
    task_tokens: float
    gamma: float
    origin: str = ""
    """Where it came from (``file:line``), for error messages and residual tables."""


def _as_point(p, i: int) -> LawPoint:
    if isinstance(p, LawPoint):
        pt = p
    else:
        try:
            C, P, T, g = p
        except (TypeError, ValueError):
            raise PathpruneError(f"point {i}: expected (budget, prefix, task_length, gamma), got {p!r}") from None
        pt = LawPoint(C, P, T, g, origin=f"point {i}")
    where = pt.origin or f"point {i}"
    for name, v in (("budget_tokens", pt.budget_tokens), ("prefix_tokens", pt.prefix_tokens),
                    ("task_tokens", pt.task_tokens)):
        if not _is_number(v) or v <= 0:
            raise PathpruneError(f"{where}: {name} must be a positive number, got {v!r}")
    if not _is_number(pt.gamma) or not 0 < pt.gamma <= 1:
        raise PathpruneError(f"{where}: gamma must be in (0, 1], got {pt.gamma!r}")
    return pt


def fit(points: Iterable, fixed: dict[str, float] | None = None, source: str = "fit") -> LawConstants:
    """Least-squares fit of the law in log space.

    ``points``: :class:`LawPoint` or ``(C, L_prefix, L_task, γ*)`` tuples, in tokens.
    ``fixed``: constants to hold (e.g. ``{"c": 0.40}``) — needed when an input
    never varies (its exponent is then not identifiable: it folds into ``a``).
    Raises a one-line :class:`PathpruneError` when the points cannot identify
    the free constants (too few points, an input that never varies, or inputs
    that always vary together).
    """
    import numpy as np

    pts = [_as_point(p, i) for i, p in enumerate(points, 1)]
    fixed = dict(fixed or {})
    for name, v in fixed.items():
        if name not in NAMES:
            raise PathpruneError(f"cannot fix {name!r}: the constants are a, b, c, d", parameter="fix")
        if not _is_number(v) or (name == "a" and v <= 0):
            raise PathpruneError(f"fixed {name} must be a finite number{' > 0' if name == 'a' else ''}, got {v!r}",
                                 parameter="fix")
    free = [n for n in NAMES if n not in fixed]
    if not free:
        raise PathpruneError("all four constants are fixed: nothing to fit", parameter="fix")
    if len(pts) < len(free):
        raise PathpruneError(f"need at least {len(free)} points to fit {', '.join(free)}, got {len(pts)}")

    y = np.array([math.log(1.0 / p.gamma) for p in pts])
    cols = {
        "a": np.ones(len(pts)),
        "b": np.log([p.budget_tokens / UNIT for p in pts]),
        "c": np.log([p.prefix_tokens / UNIT for p in pts]),
        "d": -np.log([p.task_tokens / UNIT for p in pts]),
    }
    stuck = [n for n in ("b", "c", "d") if "a" in free and n in free and np.ptp(cols[n]) < 1e-12]
    if stuck:
        what = "; ".join(f"{_VARIABLE[n]} never varies, so {n} is not identifiable" for n in stuck)
        hint = " ".join(f"--fix {n} (paper {getattr(PAPER, n):g}) or --fix {n}=VALUE" for n in stuck)
        raise PathpruneError(f"{what}: add points that vary it, or hold it with {hint}", parameter="fix")
    target = y - sum(cols[n] * float(v) if n != "a" else math.log(float(v)) for n, v in fixed.items())
    X = np.column_stack([cols[n] for n in free])
    if np.linalg.matrix_rank(X) < len(free):
        varying = [_VARIABLE[n] for n in free if n != "a"]
        raise PathpruneError(f"the inputs vary together ({', '.join(varying)} are collinear over these points), "
                             "so their exponents cannot be separated: add points that vary them independently "
                             "or hold one with --fix NAME[=VALUE]", parameter="fix")
    coef, *_ = np.linalg.lstsq(X, target, rcond=None)
    vals = {n: float(v) for n, v in fixed.items()}
    for n, v in zip(free, coef, strict=True):
        vals[n] = float(v)
    vals["a"] = math.exp(vals["a"]) if "a" in free else vals["a"]
    law = LawConstants(**{n: vals[n] for n in NAMES}, source=source, fixed=sorted(fixed), n_points=len(pts))
    pred = np.array([math.log(gamma_inverse(p.budget_tokens, p.prefix_tokens, p.task_tokens, law)) for p in pts])
    resid = y - pred
    ss_tot = float(((y - y.mean()) ** 2).sum())
    ss_res = float((resid ** 2).sum())
    law.residuals = [float(r) for r in resid]
    law.r2 = (1.0 - ss_res / ss_tot) if ss_tot > 0 else None
    law.ranges = {name: [float(min(getattr(p, attr) for p in pts)), float(max(getattr(p, attr) for p in pts))]
                  for name, attr in (("budget", "budget_tokens"), ("prefix", "prefix_tokens"),
                                     ("task", "task_tokens"))}
    return law


# ------------------------------------------------------------------------------------------ points files

_POINT_KEYS = ("budget_tokens", "prefix_tokens", "task_tokens")


def point_record(point: LawPoint, **extra) -> dict:
    """The JSONL record of a point (what the harness writes to ``law_points.jsonl``)."""
    return {"budget_tokens": point.budget_tokens, "prefix_tokens": point.prefix_tokens,
            "task_tokens": point.task_tokens, "gamma": point.gamma, **extra}


def load_points(path: str | Path) -> list[LawPoint]:
    """Read a points JSONL file: one object per line with ``budget_tokens``, ``prefix_tokens``,
    ``task_tokens`` (token counts) and ``gamma`` (γ* in (0, 1]) or ``gamma_inv`` (γ*⁻¹ ≥ 1).
    Other keys (model, task, accuracy, ...) are ignored; blank lines and ``#`` lines are skipped."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise PathpruneError(f"cannot read points file {path}: {_one_line(err)}", parameter="run_dirs") from None
    pts = []
    for no, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{path}:{no}"
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as err:
            raise PathpruneError(f"{where}: invalid JSON ({_one_line(err)})", parameter="run_dirs") from None
        if not isinstance(rec, dict):
            raise PathpruneError(f"{where}: expected a JSON object", parameter="run_dirs")
        missing = [k for k in _POINT_KEYS if k not in rec]
        if missing:
            raise PathpruneError(f"{where}: missing {', '.join(missing)}", parameter="run_dirs")
        if ("gamma" in rec) == ("gamma_inv" in rec):
            raise PathpruneError(f"{where}: give exactly one of gamma and gamma_inv", parameter="run_dirs")
        if "gamma" in rec:
            g = rec["gamma"]
        else:
            gi = rec["gamma_inv"]
            if not _is_number(gi) or gi < 1:
                raise PathpruneError(f"{where}: gamma_inv must be a number >= 1, got {gi!r}", parameter="run_dirs")
            g = 1.0 / gi
        pts.append(_as_point(LawPoint(*(rec[k] for k in _POINT_KEYS), g, origin=where), no))
    if not pts:
        raise PathpruneError(f"{path}: no points", parameter="run_dirs")
    return pts


def points_files(paths: Sequence[str | Path]) -> list[Path]:
    """Resolve run directories and files: a file is read as is; a directory contributes every
    ``law_points.jsonl`` under it (its own, or its sub-runs'). Each file counts once."""
    if not paths:
        raise PathpruneError("give at least one run directory or points file", parameter="run_dirs")
    out: list[Path] = []
    seen = set()
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(p.rglob(POINTS_FILE))
            if not found:
                raise PathpruneError(f"no {POINTS_FILE} in run directory {p}", parameter="run_dirs")
        elif p.is_file():
            found = [p]
        else:
            raise PathpruneError(f"no such run directory or points file: {p}", parameter="run_dirs")
        for f in found:
            key = f.resolve()
            if key not in seen:
                seen.add(key)
                out.append(f)
    return out


def fit_from_runs(paths: Sequence[str | Path], fixed: dict[str, float] | None = None) -> LawConstants:
    """Fit the law to the points of run directories (their ``law_points.jsonl``) and/or points files."""
    files = points_files(paths)
    pts = [pt for f in files for pt in load_points(f)]
    source = ", ".join(str(f) for f in files[:3]) + (f" (+{len(files) - 3} more)" if len(files) > 3 else "")
    return fit(pts, fixed=fixed, source=source)


def envelope_points(records: Iterable[dict], tol: float = 0.0) -> list[LawPoint]:
    """γ* per (budget, prefix, task) group from γ-sweep records — the peak of the accuracy envelope.

    Each record has ``budget_tokens``, ``prefix_tokens``, ``task_tokens``, ``gamma`` and
    ``accuracy``. Within a group the γ with the highest accuracy wins; γ values within
    ``tol`` of the best accuracy tie, and ties give their geometric mean (the centre of
    the plateau, so that ties do not bias γ* towards either end of the sweep).
    """
    groups: dict[tuple, list[tuple[float, float]]] = {}
    for rec in records:
        key = tuple(float(rec[k]) for k in _POINT_KEYS)
        groups.setdefault(key, []).append((float(rec["gamma"]), float(rec["accuracy"])))
    out = []
    for (C, P, T), rows in groups.items():
        best = max(acc for _, acc in rows)
        tied = [g for g, acc in rows if acc >= best - tol - 1e-12]
        g = math.exp(sum(math.log(x) for x in tied) / len(tied))
        out.append(LawPoint(C, P, T, g, origin=f"C={C:g} P={P:g} T={T:g}"))
    return out


# ------------------------------------------------------------------ checking γ against self-consistency


def check_on_run(run_dir: str | Path, budget_tokens: float, prefix_tokens: float, task_tokens: float, gamma: float,
                 n_boot: int = 1000, draws: int = 50) -> dict:
    """Does pruning at ``gamma`` beat self-consistency at the same tokens on an evaluation run's own paths?

    The budget buys N' = :func:`paths_for_budget` paths, k' = :func:`keep_for` of them kept, at the
    run's checkpoint nearest ``prefix_tokens``. Each signal of the run prunes ``draws`` random N'-path
    subsets of every problem's N launched paths (:func:`.budget.pruned_subsets`); its cons is compared,
    paired by problem, with self-consistency at the tokens it measurably spent
    (:func:`.budget.versus_self_consistency`). ``verdict`` is "beats" / "loses" when the 95 % interval
    of the gain excludes 0, else "ties". Without enough launched paths (N' > N) ``rows`` is empty.
    """
    from .budget import SelfConsistency, pruned_subsets, versus_self_consistency
    from .offline import Setting
    from .runs import read_run

    cfg, units, paths = read_run(run_dir)
    checkpoint = min(cfg.prefixes, key=lambda L: (abs(L - prefix_tokens), L))
    n_paths = paths_for_budget(budget_tokens, checkpoint, task_tokens, gamma)
    out = {"run": str(run_dir), "checkpoint": checkpoint, "n_paths": n_paths, "keep": keep_for(n_paths, gamma),
           "launched": cfg.n, "problems": len({u["problem_id"] for u in units}), "rows": [],
           "path_tokens": sum(p["tokens"] for u in units for p in paths[u["unit_id"]])
           / sum(len(paths[u["unit_id"]]) for u in units)}  # the run's own L_task, to compare with the input
    if n_paths > cfg.n:
        return out
    sc = SelfConsistency(units, paths, n_boot)
    for signal in cfg.signals:
        cons, tokens = pruned_subsets(units, paths, Setting(signal, checkpoint, out["keep"]), n_paths, draws)
        vs = versus_self_consistency(sc, cons, tokens)
        lo, hi = vs["gain_ci"]
        out["rows"].append({"signal": signal, **vs, "verdict": "beats" if lo > 0 else "loses" if hi < 0 else "ties"})
    return out
