"""Shared rich consoles and the progress bar every long command uses."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console()
if not console.is_terminal:  # logs and pipes: wide enough for the result tables
    console = Console(width=160)
err_console = Console(stderr=True, soft_wrap=True)  # errors stay on one line


def progress_bar() -> Progress:
    """A progress bar with count, elapsed time and ETA (on stderr, so stdout stays parseable)."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=err_console)


def parse_int_list(text: str | None, name: str) -> tuple[int, ...] | None:
    """``"1,4,8"`` → ``(1, 4, 8)``; a clear error otherwise."""
    from ..errors import PathpruneError

    if not text:
        return None
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise PathpruneError(f"{name} must be comma-separated integers, got {text!r}", parameter=name) from None
