"""Checks a command runs on its inputs before it loads a model or writes anything to ``--out``."""

from __future__ import annotations

from rich.markup import escape

from ..errors import PathpruneError
from .console import err_console


def warn(message: str) -> None:
    """One ``warning:`` line on stderr (the run goes on)."""
    err_console.print(f"[bold yellow]warning:[/] {escape(message)}", highlight=False)


def checked_signals(specs: list[str], *, prunes: bool = True) -> list:
    """Every signal spec built and its files checked (:meth:`Signal.validate`), whether or not the schedule
    prunes: a typo in ``stop:DIR`` fails now, not after a full run that never opened it."""
    from ..engine import get_signal

    if len(set(specs)) != len(specs):
        raise PathpruneError(f"signals given twice: {', '.join(specs)}")
    signals = []
    for spec in specs:
        signal = get_signal(spec)
        signal.validate()
        signals.append(signal)
    if not prunes:
        warn(f"--schedule none: nothing is pruned, the signal is unused ({', '.join(specs)})")
    return signals


def nonempty(problems: list, what: str) -> list:
    """``problems``, or a one-line error when the selection matched nothing."""
    if not problems:
        raise PathpruneError(f"no problems selected from {what}")
    return problems
