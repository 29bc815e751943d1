"""``pathprune models``: list and prepare the models pathprune can load offline."""

from __future__ import annotations

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
            if src.suffix == ".gguf":
                status = "ready" if converted_dir(src, m.name).is_dir() else "installed (run `models prepare`)"
            else:
                status = "ready"
        except PathpruneError:
            status = f"missing: {m.install_hint}"
        table.add_row(m.name, m.description, m.licence, status)
    console.print(table)


@app.command(help="Resolve a model (converting a GGUF once) and print its directory.")
def prepare(model: str = typer.Argument(..., help="Embedded name, HF directory or .gguf file.")) -> None:
    from ..models import resolve

    path = resolve(model, progress=lambda msg: err_console.print(msg))
    console.print(str(path))
