"""The error users see: one line that names the problem, never a deep traceback."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any


class PathpruneError(Exception):
    """A user-facing error (bad input, impossible config, wrong file).

    The CLI prints ``str(err)`` on one line and exits with status 2 (a server
    should answer it with HTTP 400).
    """

    def __init__(self, message: str, *, parameter: str | None = None, value: Any = None) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.value = value


def suggest(name: str, choices: Iterable[str]) -> str:
    """The tail of an unknown-name error: ``"; did you mean 'x'?"`` for the closest choice, else
    ``"; available: a, b"`` (in the order given)."""
    choices = list(choices)
    close = difflib.get_close_matches(name, choices, n=1)
    return f"; did you mean {close[0]!r}?" if close else f"; available: {', '.join(choices)}"
