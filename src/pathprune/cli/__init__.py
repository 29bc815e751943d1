"""``pathprune`` command line: thin typer commands over the library."""

from __future__ import annotations

import sys

import typer

from ..errors import PathpruneError
from .console import err_console
from .demo_cmd import demo
from .eval_cmd import eval_, report
from .models_cmd import app as models_app
from .rl_cmd import rl
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
app.command(help="GRPO on the testbed (TRL): no pruning vs pruned rollouts, held-out reward vs rollout tokens.")(rl)


def _click_exceptions():
    """click's exception modules: click's own and typer's vendored copy (recent typer raises its own
    classes, which are not subclasses of click's)."""
    import click

    modules = [click.exceptions]
    try:
        from typer._click import exceptions as vendored

        modules.append(vendored)
    except ImportError:  # an older typer that uses click itself
        pass
    return modules


def _usage_line(err) -> str:
    """One line for a usage error: the message, the command's usage and where help is."""
    message = err.format_message()
    ctx = getattr(err, "ctx", None)
    if ctx is None:
        return message
    usage = " ".join(ctx.get_usage().split()).removeprefix("Usage: ")
    return f"{message} (usage: {usage}; see '{ctx.command_path} --help')"


def _error(message: str) -> int:
    """Print ``error: message`` on one line of stderr; the exit status of every user error."""
    from rich.markup import escape

    err_console.print(f"[bold red]error:[/] {escape(' '.join(message.split()))}", highlight=False)
    return 2


def main(argv: list[str] | None = None) -> int:
    """Entry point; user errors, usage errors included, print one line and exit with status 2."""
    import typer

    modules = _click_exceptions()
    no_args = tuple(m.NoArgsIsHelpError for m in modules if hasattr(m, "NoArgsIsHelpError"))
    aborts = (typer.Abort, *(m.Abort for m in modules if hasattr(m, "Abort")))
    exits = (typer.Exit, *(m.Exit for m in modules if hasattr(m, "Exit")))
    try:
        app(args=argv, prog_name="pathprune", standalone_mode=False)
    except PathpruneError as err:
        return _error(str(err))
    except no_args as err:  # a bare group such as `pathprune law`: its help
        err.show()
        return err.exit_code
    except tuple(m.UsageError for m in modules) as err:
        return _error(_usage_line(err))
    except tuple(m.ClickException for m in modules) as err:
        return _error(err.format_message())
    except aborts:
        err_console.print("aborted")
        return 130
    except exits as err:
        return err.exit_code
    return 0


def run() -> None:  # console_scripts target
    sys.exit(main())
