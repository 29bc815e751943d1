"""``pathprune`` command line: thin typer commands over the library."""

from __future__ import annotations

import sys

import typer

from ..errors import PathpruneError
from .console import err_console
from .demo_cmd import demo
from .eval_cmd import eval_, report
from .models_cmd import app as models_app
from .run_cmd import run
from .signals_cmd import signals
from .serve_cmd import serve
from .stop_cmd import label, train
from .testbed_cmd import app as testbed_app

app = typer.Typer(
    help="Early path pruning for parallel reasoning (Launch, Check, Resume).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(models_app, name="models")
app.add_typer(testbed_app, name="testbed")
from .law_cmd import app as law_app  # noqa: E402  (kept beside its registration)

app.add_typer(law_app, name="law")
app.command(help="Run the main job on the embedded testbed model.")(demo)
app.command(help="Launch, Check, Resume over a benchmark or testbed split; per-path JSONL logs.")(run)
app.command(name="eval", help="Compare signals on the same launched paths; metrics with CIs, reports.")(eval_)
app.command(help="Rebuild an evaluation's tables, figures and HTML report from its logs.")(report)
app.command(help="List the registered pruning signals and their taxonomy type.")(signals)
app.command(help="Monte-Carlo soft labels for prefixes (STOP training data); resumable.")(label)
app.command(help="Train a STOP module on Monte-Carlo labels; keeps the best epoch.")(train)
app.command(help="OpenAI-compatible server: pruned parallel reasoning, STOP /classify, metrics.")(serve)


def main(argv: list[str] | None = None) -> int:
    """Entry point; user errors print one line and exit with status 2."""
    import click

    try:
        app(args=argv, prog_name="pathprune", standalone_mode=False)
    except PathpruneError as err:
        err_console.print(f"[bold red]error:[/] {err}", highlight=False)
        return 2
    except click.ClickException as err:
        err.show()
        return err.exit_code
    except click.exceptions.Abort:
        err_console.print("aborted")
        return 130
    except click.exceptions.Exit as err:
        return err.exit_code
    return 0


def run() -> None:  # console_scripts target
    sys.exit(main())
