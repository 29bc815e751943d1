"""``pathprune testbed``: train the testbed model, measure it, look at its paths."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from .console import console, parse_int_list, progress_bar

app = typer.Typer(help="The testbed reasoning model (train, stats, sample).", no_args_is_help=True)


@app.command(help="Train the testbed model from scratch (reproduces the shipped checkpoint with the defaults).")
def train(
    out: Path = typer.Option(Path("testbed-checkpoint"), help="Output directory (HF format)."),
    steps: int = typer.Option(None, help="Optimiser steps (default: the shipped run's)."),
    batch_size: int = typer.Option(None, help="Sequences per step."),
    seed: int = typer.Option(0, help="Seed of initialisation and data."),
    threads: int = typer.Option(2, help="torch threads."),
) -> None:
    from ..testbed.train import PretrainConfig, train as run_train

    cfg = PretrainConfig(seed=seed, threads=threads)
    cfg.steps = steps or cfg.steps
    cfg.batch_size = batch_size or cfg.batch_size
    with progress_bar() as bar:
        task = bar.add_task("training", total=cfg.steps)
        record = run_train(out, cfg, progress=lambda step, loss: bar.update(
            task, completed=step, description=f"training (loss {loss:.3f})"))
    last = record["history"][-1]
    console.print(f"saved {out}  val_loss={last['val_loss']}  in {record['train_seconds']} s")


def _render(rows, title: str) -> None:
    table = Table(title=title)
    cols = ("family", "d", "pass@1", "all right", "all wrong", "maj@N", "early slip",
            "P(ok|early slip)", "P(ok|none)", "strategy err", "slip err", "tokens")
    for c in cols:
        table.add_column(c, justify="right")

    def f(x):
        return "–" if x is None else f"{x:.2f}"

    for r in rows:
        table.add_row(r.family, str(r.difficulty), f(r.pass_at_1), f(r.all_right), f(r.all_wrong), f(r.majority),
                      f(r.early_slip_share), f(r.p_correct_early_slip), f(r.p_correct_no_early_slip),
                      f(r.strategy_errors), f(r.slip_errors), f"{r.mean_tokens:.0f}")
    console.print(table)


@app.command(help="Per family and difficulty: pass@1, all-right/all-wrong shares, early-slip effect.")
def stats(
    model: str = typer.Option("testbed", help="Model to measure (a testbed-format checkpoint)."),
    problems: int = typer.Option(50, help="Test problems per level."),
    paths: int = typer.Option(16, "--n", "--paths", help="Sampled paths per problem (N)."),
    temperature: float = typer.Option(1.0, help="Sampling temperature."),
    seed: int = typer.Option(0),
    family: str = typer.Option(None, help="Only this family (chain or list)."),
    levels: str = typer.Option(None, help="Comma-separated difficulty levels, e.g. 1,4,8."),
    early: float = typer.Option(0.35, help="A slip counts as early within this fraction of the steps."),
    json_out: Path = typer.Option(None, "--json", help="Also write the rows to this JSON file."),
) -> None:
    from ..models import load_model
    from ..testbed.problems import check_family, suite
    from ..testbed.stats import testbed_stats

    if family:
        check_family(family)
    level_tuple = parse_int_list(levels, "levels")
    fams = (family,) if family else None
    total = len(suite("test", problems, seed, fams, level_tuple))
    m, tok = load_model(model)
    with progress_bar() as bar:
        task = bar.add_task("sampling", total=total)
        rows = testbed_stats(m, tok, n_problems=problems, n_paths=paths, temperature=temperature, seed=seed,
                             early=early, families=fams, levels=level_tuple,
                             progress=lambda k: bar.advance(task, k))
    _render(rows, f"{model}: N={paths}, T={temperature}, test split")
    if json_out:
        from ..io.atomic import write_json_atomic

        write_json_atomic(json_out, [r.as_dict() for r in rows])


@app.command(help="Print sampled paths for one generated problem.")
def sample(
    family: str = typer.Option("chain", help="chain or list."),
    difficulty: int = typer.Option(6),
    n: int = typer.Option(4, help="Paths to sample."),
    temperature: float = typer.Option(1.0),
    seed: int = typer.Option(0),
    model: str = typer.Option("testbed"),
) -> None:
    from ..engine.loop import sample as run_sample
    from ..engine.sampling import SamplingParams
    from ..models import load_model
    from ..testbed.families import FAMILIES
    from ..testbed.problems import generate

    problem = generate(family, difficulty, 1, "test", seed)[0]
    m, tok = load_model(model)
    paths = run_sample(m, tok, [tok(problem.prompt).input_ids],
                       SamplingParams(n=n, temperature=temperature, max_new_tokens=160, seed=seed))[0]
    console.print(f"[bold]{problem.prompt}[/]   reference: {problem.answer}")
    fam = FAMILIES[family]
    for ids in paths:
        words = tok.convert_ids_to_tokens(ids)
        a = fam.analyse(problem.meta["spec"], words)
        mark = "[green]✓[/]" if a.answer == problem.answer else f"[red]✗ {a.error_kind} at step {a.first_error_step}[/]"
        console.print(f"{mark}  {' '.join(words)}", highlight=False)
