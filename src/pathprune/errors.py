"""The error users see: one line that names the problem, never a deep traceback."""

from __future__ import annotations

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
