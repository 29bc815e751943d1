"""``pathprune models``: list and prepare the models pathprune can load offline."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from ..errors import PathpruneError
from .console import console, err_console

app = typer.Typer(help="List and prepare models (embedded names, HF directories, GGUF files).",
                  no_args_is_help=True)


@app.command("list", help="List embedded models and whether they are ready to load.")
def list_models() -> None:
    from ..models import EMBEDDED, cache_dir
    from ..models.gguf import converted_dir

    table = Table(title=f"embedded models (cache: {cache_dir()})")
    for col in ("name", "description", "licence", "status"):
        table.add_column(col)
    for m in EMBEDDED.values():
        try:
            src = m.source()
            if m.adapter:
                from ..models.merge import is_merged

                status = "ready" if is_merged(m.name, src) else "installed (run `models prepare`)"
            elif src.suffix == ".gguf":
                status = "ready" if converted_dir(src, m.name).is_dir() else "installed (run `models prepare`)"
            else:
                status = "ready"
        except PathpruneError:
            status = f"missing: {m.install_hint}"
        table.add_row(m.name, m.description, m.licence, status)
    console.print(table)


@app.command(help="Resolve a model (converting a GGUF once) and print its directory.")
def prepare(model: str = typer.Argument(..., help="Embedded name, HF directory or .gguf file (an adapter model, "
                                         "e.g. smollm2-135m-reasoner, is merged into its base once).")) -> None:
    from ..models import resolve

    path = resolve(model, progress=lambda msg: err_console.print(msg))
    console.print(str(path))


@app.command("train-reasoner", help="LoRA-train SmolLM2-135M-Instruct into the step-by-step reasoner "
                                    "(TRL SFTTrainer, CPU, resumable: rerun the same command to continue).")
def train_reasoner(
    out: Path = typer.Option(..., help="Run directory: checkpoints/, train_log.jsonl, adapter/ (the result)."),
    steps: int = typer.Option(300, help="Optimiser steps."),
    batch_size: int = typer.Option(4, help="Problems per step."),
    levels: str = typer.Option("1,2,3,4,5,6", help="Reasoner levels (steps per problem) to train on."),
    per_level: int = typer.Option(500, help="Train-split problems generated per level."),
    rank: int = typer.Option(8, help="LoRA rank (all linear layers)."),
    lr: float = typer.Option(1e-3, help="Peak learning rate (cosine schedule)."),
    threads: int = typer.Option(1, help="torch threads (1 is faster on a shared 2-core machine)."),
    seed: int = typer.Option(0, help="Training seed."),
) -> None:
    from ..models.train_reasoner import ReasonerRecipe, train
    from .console import parse_int_list

    from ..tasks.reasoner import check_args

    lv = parse_int_list(levels, "levels") or ()
    check_args(lv)
    for name, value in (("steps", steps), ("batch_size", batch_size), ("per_level", per_level), ("rank", rank),
                        ("threads", threads)):
        if value < 1:
            raise PathpruneError(f"--{name.replace('_', '-')} must be >= 1, got {value}", parameter=name, value=value)
    recipe = ReasonerRecipe(levels=lv, per_level=per_level, steps=steps, batch_size=batch_size, rank=rank,
                            alpha=2 * rank, learning_rate=lr, threads=threads, seed=seed,
                            save_steps=max(1, min(20, steps)))
    adapter = train(out, recipe, progress=lambda msg: err_console.print(msg))
    console.print(str(adapter))
