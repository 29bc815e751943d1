"""``pathprune demo``: the main job on the embedded default (the testbed model)."""

from __future__ import annotations

import typer

from .console import console, progress_bar


def demo(
    problems: int = typer.Option(12, help="Test problems per level."),
    paths: int = typer.Option(8, help="Sampled paths per problem (N)."),
    seed: int = typer.Option(0),
) -> None:
    """Sample N paths on the testbed's test split and print accuracy by difficulty.

    Until the pruning engine lands this shows the phenomenon pruning exploits:
    accuracy falls with difficulty, and paths that slip early are doomed.
    """
    from ..models import load_model
    from ..testbed.problems import suite
    from ..testbed.stats import testbed_stats
    from .testbed_cmd import _render

    levels = (1, 4, 8)
    total = len(suite("test", problems, seed, None, levels))
    model, tokenizer = load_model("testbed")
    with progress_bar() as bar:
        task = bar.add_task("sampling", total=total)
        rows = testbed_stats(model, tokenizer, n_problems=problems, n_paths=paths, seed=seed, levels=levels,
                             progress=lambda k: bar.advance(task, k))
    _render(rows, f"testbed demo: N={paths} paths per problem, temperature 1.0")
    console.print("P(ok|early slip) ≪ P(ok|none): paths that slip early are doomed, which is what pruning exploits.")
