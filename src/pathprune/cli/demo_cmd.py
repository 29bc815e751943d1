"""``pathprune demo``: the main job on the embedded default (the testbed model)."""

from __future__ import annotations

import typer
from rich.table import Table

from .console import console, progress_bar


def _prune_table(model, tokenizer, problems, n: int, schedule: str, seed: int) -> Table:
    from ..engine import Pruner, SamplingParams, TokenUsage

    params = SamplingParams(n=n, temperature=1.0, max_new_tokens=160, seed=seed)
    table = Table(title=f"Launch–Check–Resume on the hardest levels: N={n}, schedule {schedule} "
                        f"({len(problems)} test problems)")
    for col in ("signal", "type", "cons (vote)", "avg@kept", "generated tokens", "Δ tokens", "check tokens"):
        table.add_column(col, justify="right")
    baseline = None
    runs = [("no pruning", "random", None)] + [(name, name, schedule) for name in
                                                ("random", "jaccard", "mean_logprob", "conf_lowest", "neg_entropy", "stop")]
    with progress_bar() as bar:
        task = bar.add_task("pruning runs", total=len(runs) * len(problems))
        for label, signal, sched in runs:
            pruner = Pruner(model, tokenizer, signal, sched, params, problems_per_batch=8)
            results = pruner.run(problems, progress=lambda k: bar.advance(task, k))
            usage = sum((r.usage for r in results), TokenUsage())
            kept = [p for r in results for p in r.paths if p.kept]
            baseline = baseline or usage.generated
            table.add_row(label, pruner.signal.taxonomy if sched else "–",
                          f"{sum(r.correct for r in results) / len(results):.3f}",
                          f"{sum(p.correct for p in kept) / len(kept):.3f}", f"{usage.generated:,}",
                          f"{100 * (baseline - usage.generated) / baseline:.1f} %", f"{usage.check:,}")
    return table


def demo(
    problems: int = typer.Option(12, help="Test problems per level for the accuracy table."),
    paths: int = typer.Option(16, help="Sampled paths per problem (N)."),
    schedule: str = typer.Option("16:4", help="Pruning schedule of the pruning table."),
    seed: int = typer.Option(0),
) -> None:
    """Sample N paths on the testbed's test split: accuracy by difficulty, then pruning at a checkpoint.

    The first table shows the phenomenon pruning exploits (paths that slip early are doomed); the
    second prunes N paths to k at a checkpoint with the built-in signals and counts the tokens saved.
    """
    from ..models import load_model
    from ..testbed.problems import generate, suite
    from ..testbed.stats import testbed_stats
    from .testbed_cmd import _render

    levels = (1, 4, 8)
    total = len(suite("test", problems, seed, None, levels))
    model, tokenizer = load_model("testbed")
    with progress_bar() as bar:
        task = bar.add_task("sampling", total=total)
        rows = testbed_stats(model, tokenizer, n_problems=problems, n_paths=paths, seed=seed, levels=levels,
                             progress=lambda k: bar.advance(task, k))
    _render(rows, f"testbed: N={paths} paths per problem, temperature 1.0")
    console.print("P(ok|early slip) ≪ P(ok|none): paths that slip early are doomed, which is what pruning exploits.\n")
    hard = generate("chain", 10, 20, "test", seed) + generate("list", 8, 20, "test", seed)
    console.print(_prune_table(model, tokenizer, hard, paths, schedule, seed))
    console.print("cons = majority vote of the kept paths; avg@kept = accuracy of the kept paths (avg@k|N); "
                  "Δ tokens = saving against no pruning. Type I jaccard = SlimSC-style diversity; "
                  "Type III = DeepConf-style confidence; Type IV = STOP (the shipped testbed checkpoint).")
