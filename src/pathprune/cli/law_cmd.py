"""``pathprune law``: the deployment scaling law γ⁻¹ = a·C^b·L_prefix^c / L_task^d (recommend, table, fit)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from .console import console

app = typer.Typer(help="Deployment scaling law: recommended retention ratio γ = k/N; fit it to sweeps.",
                  no_args_is_help=True)

TOKENS = "tokens; k = 1,024 (140k = 143,360)"


def _constants(path: Path | None):
    from ..evaluation.law import PAPER, LawConstants

    return PAPER if path is None else LawConstants.load(path)


def _fmt_tokens(x: float) -> str:
    from ..evaluation.law import UNIT

    return f"{x:,.0f} ({x / UNIT:.2f}k)".replace(".00k", "k")


def _notes(law, C: float, P: float, T: float) -> list[str]:
    notes = []
    if law.ranges:
        for name, v in (("budget", C), ("prefix", P), ("task", T)):
            lo, hi = law.ranges.get(name, (v, v))
            if not lo <= v <= hi:
                notes.append(f"{name} {v:,.0f} is outside the fitted range {lo:,.0f}–{hi:,.0f} tokens (extrapolation)")
    if C < T:
        notes.append("the budget is smaller than one complete path (C < L_task)")
    if P >= T:
        notes.append("the prefix is not shorter than the task length: paths end before the checkpoint")
    return notes


@app.command()
def recommend(
    budget: str = typer.Option(..., help=f"Total compute budget C per query ({TOKENS})."),
    prefix: str = typer.Option(..., "--prefix-tokens", "--prefix", help=f"Checkpoint L_prefix ({TOKENS})."),
    task_length: str = typer.Option(..., help=f"Reference response length L_task of the task ({TOKENS})."),
    paths: int = typer.Option(None, "--n", "--paths", help="Paths N: also print k = round(γ·N)."),
    constants: Path = typer.Option(None, help="Constants JSON from `pathprune law fit` (default: the paper's)."),
    run: Path = typer.Option(None, help="A `pathprune eval` run of your own model and problems: check whether the "
                                        "recommended γ beats self-consistency at this budget on its paths."),
) -> None:
    """The optimal retention ratio γ for a budget, checkpoint and task length (Eq. 7)."""
    from ..evaluation.law import UNIT, gamma_inverse, keep_for, parse_tokens, paths_for_budget

    C = parse_tokens(budget, "budget")
    P = parse_tokens(prefix, "prefix")
    T = parse_tokens(task_length, "task_length")
    law = _constants(constants)
    if paths is not None and paths < 1:
        from ..errors import PathpruneError

        raise PathpruneError(f"--paths must be a positive integer, got {paths}", parameter="paths")
    inv = gamma_inverse(C, P, T, law)
    gamma = min(1.0, 1.0 / inv)
    table = Table(title=f"recommended retention (constants: {constants or 'paper'})",
                  caption=f"γ⁻¹ = {law.a:.4g}·C^{law.b:.3g}·L_prefix^{law.c:.3g} / L_task^{law.d:.3g}, "
                          f"inputs in units of {UNIT:,} tokens")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    table.add_row("budget C", _fmt_tokens(C))
    table.add_row("prefix L_prefix", _fmt_tokens(P))
    table.add_row("task length L_task", _fmt_tokens(T))
    table.add_row("γ⁻¹ (law)", f"{inv:.2f}" if inv >= 0.995 else f"{inv:.3g}")
    table.add_row("γ = k/N", f"{gamma:.4f}" + (" (clipped: no pruning)" if inv < 1 else ""))
    if paths is not None:
        table.add_row(f"keep k of N = {paths}", str(keep_for(paths, gamma)))
    n_afford = paths_for_budget(C, P, T, gamma)
    table.add_row("N the budget affords", f"{n_afford} (keep {keep_for(n_afford, gamma)})")
    console.print(table)
    for note in _notes(law, C, P, T):
        console.print(f"note: {note}", highlight=False)
    if run is not None:
        _check_on_run(run, C, P, T, gamma)


def _check_on_run(run: Path, C: float, P: float, T: float, gamma: float) -> None:
    """The recommended γ against self-consistency at equal tokens, on a run's own paths."""
    from ..evaluation.law import check_on_run

    res = check_on_run(run, C, P, T, gamma)
    head = (f"{run}: {res['problems']} problems, mean path {res['path_tokens']:,.0f} tokens (L_task given: {T:,.0f}); "
            f"the budget buys N' = {res['n_paths']} paths, keep k' = {res['keep']} at L = {res['checkpoint']}")
    console.print(head, highlight=False, soft_wrap=True)
    if res["checkpoint"] != P:
        console.print(f"note: the run has no checkpoint at {P:,.0f} tokens; used its nearest, {res['checkpoint']}",
                      highlight=False)
    if not res["rows"]:
        console.print(f"note: the run launched only N = {res['launched']} paths per problem, fewer than N' = "
                      f"{res['n_paths']}: rerun `pathprune eval` with --n {res['n_paths']} or more to check this γ",
                      highlight=False)
        return
    check = Table(title="pruning at this γ vs self-consistency at equal tokens (same paths, paired by problem)")
    for col in ("signal", "cons %", "tokens", "self-consistency n*", "its cons %", "Δ cons (points) [95% CI]", "verdict"):
        check.add_column(col, justify="left" if col in ("signal", "verdict") else "right")
    for r in res["rows"]:
        lo, hi = r["gain_ci"]
        check.add_row(r["signal"], f"{100 * r['cons']:.1f}", f"{r['tokens']:,.0f}", f"{r['sc_n']:.1f}",
                      f"{100 * r['sc_cons']:.1f}", f"{100 * r['gain']:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]",
                      r["verdict"] + (" (n* clamped)" if r["clamped"] else ""))
    console.print(check)


@app.command()
def table(
    task_length: str = typer.Option(..., help=f"Task length L_task ({TOKENS})."),
    prefixes: str = typer.Option(..., "--prefix-tokens", "--prefixes", help="Comma-separated L_prefix values (rows), e.g. 512,1024,2048."),
    budgets: str = typer.Option(..., help="Comma-separated budgets C (columns), e.g. 140k,160k,180k."),
    constants: Path = typer.Option(None, help="Constants JSON (default: the paper's)."),
) -> None:
    """A grid of recommended γ⁻¹ like the paper's Tables 14–15."""
    from ..evaluation.law import gamma_inverse, parse_tokens
    from ..errors import PathpruneError

    T = parse_tokens(task_length, "task_length")
    rows = [x.strip() for x in prefixes.split(",") if x.strip()]
    cols = [x.strip() for x in budgets.split(",") if x.strip()]
    if not rows or not cols:
        raise PathpruneError("give at least one prefix and one budget", parameter="prefixes")
    law = _constants(constants)
    grid = Table(title=f"recommended γ⁻¹, L_task = {T:,.0f} tokens (constants: {constants or 'paper'})")
    grid.add_column("L_prefix \\ C")
    for c in cols:
        grid.add_column(c, justify="right")
    Cs = [parse_tokens(c, "budgets") for c in cols]
    for r in rows:
        P = parse_tokens(r, "prefixes")
        grid.add_row(r, *(f"{gamma_inverse(C, P, T, law):.2f}" for C in Cs))
    console.print(grid)


def _parse_fix(items: list[str] | None) -> dict[str, float]:
    from ..errors import PathpruneError
    from ..evaluation.law import NAMES, PAPER

    out = {}
    for item in items or []:
        name, _, value = item.partition("=")
        name = name.strip()
        if name not in NAMES:
            raise PathpruneError(f"--fix takes NAME or NAME=VALUE with NAME in a, b, c, d; got {item!r}", parameter="fix")
        if value.strip():
            try:
                out[name] = float(value)
            except ValueError:
                raise PathpruneError(f"--fix {name}: {value!r} is not a number", parameter="fix") from None
        else:
            out[name] = getattr(PAPER, name)
    return out


@app.command()
def fit(
    run_dirs: list[Path] = typer.Argument(..., help="Run directories (each with law_points.jsonl) or points JSONL files."),
    out: Path = typer.Option(None, help="Write the fitted constants here (JSON, usable by --constants)."),
    fix: list[str] = typer.Option(None, help="Hold a constant: NAME (paper value) or NAME=VALUE; repeatable."),
    show: int = typer.Option(40, help="Residual rows to print (0: none)."),
) -> None:
    """Fit a, b, c, d to γ-sweep optima by least squares in log space; report R² and residuals."""
    from ..evaluation.law import PAPER, fit_from_runs, gamma_inverse, load_points, points_files

    fixed = _parse_fix(fix)
    law = fit_from_runs(run_dirs, fixed=fixed)
    summary = Table(title=f"scaling-law fit: {law.n_points} points from {law.source}")
    for col in ("constant", "fitted", "paper"):
        summary.add_column(col, justify="right" if col != "constant" else "left")
    for name in ("a", "b", "c", "d"):
        mark = " (fixed)" if name in law.fixed else ""
        summary.add_row(name, f"{getattr(law, name):.4g}{mark}", f"{getattr(PAPER, name):.4g}")
    summary.add_row("R² (log γ⁻¹)", "–" if law.r2 is None else f"{law.r2:.4f}", "")
    summary.add_row("RMSE (log γ⁻¹)", f"{law.rmse:.4f}", "")
    console.print(summary)
    if show:
        pts = [p for f in points_files(run_dirs) for p in load_points(f)]
        res = Table(title="residuals (observed − fitted, natural log of γ⁻¹)")
        for col in ("point", "C", "L_prefix", "L_task", "γ*⁻¹", "fitted γ⁻¹", "residual"):
            res.add_column(col, justify="left" if col == "point" else "right")
        for p, r in list(zip(pts, law.residuals, strict=True))[:show]:
            origin = Path(p.origin)
            res.add_row(f"{origin.parent.name}/{origin.name}", f"{p.budget_tokens:,.0f}", f"{p.prefix_tokens:,.0f}", f"{p.task_tokens:,.0f}",
                        f"{1 / p.gamma:.2f}",
                        f"{gamma_inverse(p.budget_tokens, p.prefix_tokens, p.task_tokens, law):.2f}",
                        f"{r:+.3f}")
        console.print(res)
        if len(pts) > show:
            console.print(f"... {len(pts) - show} more points (--show N)")
    if out is not None:
        law.save(out)
        console.print(f"wrote {out}", highlight=False)
