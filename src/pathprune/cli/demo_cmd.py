"""``pathprune demo``: the main job on the embedded default (the testbed model and its STOP checkpoint)."""

from __future__ import annotations

from pathlib import Path

import typer

from .console import console, parse_int_list

DEMO_SIGNALS = "random,jaccard,judge,mean_logprob,conf_lowest,neg_entropy,stop,stop_lp"


def demo(
    out: Path = typer.Option(Path("runs/demo"), help="Run directory (reused if it holds the same demo)."),
    per_level: int = typer.Option(25, help="Test problems per family and level."),
    levels: str = typer.Option("6,8", help="Testbed difficulty levels (the hard ones, where pruning matters)."),
    n: int = typer.Option(64, help="Paths per problem (N), the paper's 64."),
    keep: str = typer.Option("8,2,4,16,32", help="Kept paths k (first = the table's; the rest for the figures)."),
    prefix: str = typer.Option("16,12,24", "--prefix-tokens", "--prefix", help="Checkpoints L in tokens (first = the table's)."),
    signals: str = typer.Option(DEMO_SIGNALS, help="Signals to compare, one per taxonomy type and references."),
    seed: int = typer.Option(0),
) -> None:
    """No pruning vs random vs Types I–IV on the testbed: N=64 → k=8, accuracy, tokens, 95 % CIs, report.

    Every signal scores the same launched prefixes and every path is finished once
    (``pathprune eval``), so the comparison is fair and costs about one unpruned run.
    """
    from ..evaluation.sources import problems_with_datasets
    from .eval_cmd import print_report
    from .evaluate import evaluate

    console.print(f"[bold]pathprune demo[/]: {n} paths per problem on the testbed's hard test problems "
                  f"(levels {levels}), pruned to k at L tokens by each signal; STOP = the shipped checkpoint.")
    problems, datasets = problems_with_datasets(None, "test", levels, per_level, None, seed)
    report = evaluate(out, problems, datasets=datasets, model="testbed", signals=signals.split(","), n=n,
                      prefixes=parse_int_list(prefix, "prefix") or (), keeps=parse_int_list(keep, "keep") or (),
                      temperature=1.0, top_p=1.0, top_k=0, max_new_tokens=160, seeds=(seed,), problems_per_batch=2,
                      bootstrap=1000, source=dict(benchmarks=None, testbed_split="test", levels=levels,
                                                  per_level=per_level, limit=None))
    print_report(report, out)
    console.print("avg@k|N = mean accuracy of the kept paths; cons@k = their majority vote; Δ = tokens saved "
                  "against finishing all N; Δ cons vs self-consistency = cons@k minus the vote of fewer unpruned "
                  "paths costing the same tokens (paired by problem; > 0: pruning pays); lost = problems where a "
                  "launched path was right but no kept one was. "
                  "Type I = SlimSC-style diversity, III = DeepConf-style confidence, "
                  "IV = STOP (stop_lp: its head also reads the mean log-prob, our extension). "
                  "Figures and the HTML report are in the run directory.")
