"""``pathprune eval`` and ``pathprune report``: every signal on the same paths, paper-style reports."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from .console import console, parse_int_list, progress_bar
from .inputs import BACKEND_HELP, cut_points, unescape


def print_report(report, run_dir: Path) -> None:
    """The main setting's table and where the report files are."""
    from ..evaluation.report import DETAIL_HEAD, detail_rows

    cfg = report.config

    table = Table(title=f"{cfg.model}: N={cfg.n} → k={cfg.keeps[0]} at L={cfg.prefixes[0]} tokens "
                        f"({report.rows[0]['problems']} problems, seeds {cfg.seeds})")
    for col in DETAIL_HEAD:
        table.add_column(col, justify="right")
    for row in detail_rows(cfg, report.rows):
        table.add_row(*row)
    console.print(table)
    console.print(f"report: {run_dir / 'report.md'}  ·  {run_dir / 'report.html'}")


def eval_(
    out: Path = typer.Option(..., help="Run directory (resumed if it exists with the same config)."),
    model: str = typer.Option("testbed", help="Embedded name, HF directory or .gguf file."),
    benchmark: list[str] = typer.Option(None, help="Benchmark JSON/JSONL file, wordproblems[:LEVELS], or hf:NAME[:SPLIT] (needs `datasets` and a hub); repeat for several."),
    testbed_split: str = typer.Option("test", help="Testbed split when no benchmark is given."),
    levels: str = typer.Option(None, help="Testbed difficulty levels, e.g. 8,10."),
    per_level: int = typer.Option(10, help="Testbed problems per family and level."),
    limit: int = typer.Option(None, help="Use only the first problems of each source."),
    signals: str = typer.Option("random,jaccard,mean_logprob,conf_lowest,stop", help="Comma-separated signals."),
    n: int = typer.Option(16, help="Paths per problem (N)."),
    prefix: str = typer.Option("16", "--prefix-tokens", "--prefix", help="Checkpoints, comma-separated (first = main): "
                               "lengths L, or stepM/L (each path at its M-th reasoning step, at most L tokens)."),
    step_delimiter: str = typer.Option("\\n", help="Where a reasoning step ends, for stepM/L checkpoints."),
    keep: str = typer.Option("4", help="Kept paths k, comma-separated (first = main)."),
    temperature: float = typer.Option(1.0),
    top_p: float = typer.Option(1.0),
    top_k: int = typer.Option(0),
    max_new_tokens: int = typer.Option(160),
    seeds: str = typer.Option("0", help="Sampling seeds, comma-separated (metrics average over them)."),
    problems_per_batch: int = typer.Option(4, help="Problems sampled together (N rows each)."),
    bootstrap: int = typer.Option(1000, help="Bootstrap resamples for the 95 % intervals."),
    workers: int = typer.Option(0, help="Ray workers (one model replica each); 0 or 1 = in this process."),
    ray_address: str = typer.Option("local", help="local = start Ray here; auto, HOST:PORT or ray://HOST:PORT."),
    worker_cpus: float = typer.Option(1.0, help="CPUs per Ray worker (also its torch threads)."),
    worker_gpus: float = typer.Option(0.0, help="GPUs per Ray worker."),
    backend: str = typer.Option("transformers", help=BACKEND_HELP),
) -> None:
    """Compare signals fairly: one launch, every signal scores the same prefixes, every path finished once."""
    from ..evaluation.sources import problems_with_datasets
    from .evaluate import evaluate

    seed_list = parse_int_list(seeds, "seeds") or (0,)
    problems, datasets = problems_with_datasets(benchmark or [], testbed_split, levels, per_level, limit, seed_list[0])
    report = evaluate(out, problems, datasets=datasets, model=model, signals=signals.split(","), n=n,
                      prefixes=cut_points(prefix), keeps=parse_int_list(keep, "keep") or (),
                      step_delimiter=unescape(step_delimiter),
                      temperature=temperature, top_p=top_p, top_k=top_k, max_new_tokens=max_new_tokens,
                      seeds=seed_list, problems_per_batch=problems_per_batch, bootstrap=bootstrap, workers=workers,
                      ray_address=ray_address, worker_cpus=worker_cpus, worker_gpus=worker_gpus, backend=backend,
                      source=dict(benchmarks=benchmark or None, testbed_split=testbed_split, levels=levels,
                                  per_level=per_level, limit=limit))
    print_report(report, out)


def report(
    run_dir: Path = typer.Argument(..., help="An evaluation run directory."),
    bootstrap: int = typer.Option(1000, help="Bootstrap resamples for the 95 % intervals."),
) -> None:
    """Rebuild summary.json, report.md, the figures and report.html from a run's logs."""
    from ..evaluation.report import build_report

    rep = build_report(run_dir, n_boot=bootstrap)
    print_report(rep, run_dir)
