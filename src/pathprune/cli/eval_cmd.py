"""``pathprune eval`` and ``pathprune report``: every signal on the same paths, paper-style reports."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from ..errors import PathpruneError
from .console import console, parse_int_list, progress_bar
from .inputs import BACKEND_HELP


def problems_with_datasets(benchmarks: list[str], testbed_split: str, levels: str | None, per_level: int,
                           limit: int | None, seed: int):
    """Problems from benchmark files (dataset = file stem) or the testbed suite (dataset = family)."""
    from ..evaluation.runs import dataset_of
    from .run_cmd import load_problems

    problems, datasets = [], {}
    for source in benchmarks or [None]:
        chunk = load_problems(source, testbed_split, levels, per_level, limit, seed)
        default = Path(source).stem if source else "testbed"
        for p in chunk:
            datasets[p.id] = dataset_of(p, default)
        problems += chunk
    return problems, datasets


def print_report(report, cfg) -> None:
    from ..evaluation.report import DETAIL_HEAD, detail_rows

    table = Table(title=f"{cfg.model}: N={cfg.n} → k={cfg.keeps[0]} at L={cfg.prefixes[0]} tokens "
                        f"({report.rows[0]['problems']} problems, seeds {cfg.seeds})")
    for col in DETAIL_HEAD:
        table.add_column(col, justify="right")
    for row in detail_rows(cfg, report.rows):
        table.add_row(*row)
    console.print(table)


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
    prefix: str = typer.Option("16", "--prefix-tokens", "--prefix", help="Checkpoint lengths L, comma-separated (first = main)."),
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
    from ..evaluation.report import build_report
    from ..evaluation.runs import EvalConfig, run_eval
    from ..io.runlog import cleaned_on_failure
    from .inputs import checked_backend, checked_signals, model_and_tokenizer

    seed_list = list(parse_int_list(seeds, "seeds") or (0,))
    cfg = EvalConfig(model=model, signals=[s.strip() for s in signals.split(",") if s.strip()], n=n,
                     prefixes=list(parse_int_list(prefix, "prefix")), keeps=list(parse_int_list(keep, "keep")),
                     sampling=dict(temperature=temperature, top_p=top_p, top_k=top_k, max_new_tokens=max_new_tokens),
                     seeds=seed_list, problems_per_batch=problems_per_batch,
                     problems=dict(benchmarks=benchmark or None, testbed_split=testbed_split, levels=levels,
                                   per_level=per_level, limit=limit))
    # every input is checked before a model is loaded or anything is written to --out
    signal_objects = checked_signals(cfg.signals)
    if workers < 0:
        raise PathpruneError(f"--workers must be >= 0, got {workers}")
    checked_backend(backend, workers=workers)
    if workers >= 2:
        from ..distributed.ray_executor import check_address

        check_address(ray_address)
    problems, datasets = problems_with_datasets(benchmark or [], testbed_split, levels, per_level, limit, seed_list[0])
    m, tok = model_and_tokenizer(model, backend, signal_objects) if workers < 2 else (None, None)
    with cleaned_on_failure(out), progress_bar() as bar:
        task = bar.add_task("problems × seeds", total=len(problems) * len(seed_list))
        run_eval(m, tok, problems, cfg, out, datasets, progress=lambda k: bar.advance(task, k), workers=workers,
                 ray_address=ray_address, resources={"num_cpus": worker_cpus, "num_gpus": worker_gpus})
    report = build_report(out, n_boot=bootstrap)
    print_report(report, cfg)
    console.print(f"report: {out / 'report.md'}  ·  {out / 'report.html'}")


def report(
    run_dir: Path = typer.Argument(..., help="An evaluation run directory."),
    bootstrap: int = typer.Option(1000, help="Bootstrap resamples for the 95 % intervals."),
) -> None:
    """Rebuild summary.json, report.md, the figures and report.html from a run's logs."""
    from ..evaluation.report import build_report
    from ..evaluation.runs import read_run

    cfg, _, _ = read_run(run_dir)
    rep = build_report(run_dir, n_boot=bootstrap)
    print_report(rep, cfg)
    console.print(f"report: {run_dir / 'report.md'}  ·  {run_dir / 'report.html'}")
