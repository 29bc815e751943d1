"""Name → signal factory, so ``signal="NAME[:ARG]"`` works from Python, the CLI and the server.

The registry belongs to the engine (the Pruner resolves specs); the signals
package registers the built-in signals into it when ``pathprune`` is imported,
and a user's own signal registers the same way with :func:`register_signal`.
"""

from __future__ import annotations

from typing import Callable

from ..errors import PathpruneError, suggest
from .contract import Signal

_REGISTRY: dict[str, Callable[[str | None], Signal]] = {}


def register_signal(name: str):
    """Class decorator: ``cls(arg)`` builds the signal from the text after ``:`` (or None)."""

    def wrap(cls):
        if name in _REGISTRY:
            raise ValueError(f"signal {name!r} is already registered")
        _REGISTRY[name] = cls
        return cls

    return wrap


def available_signals() -> list[str]:
    return sorted(_REGISTRY)


def check_signal_name(spec: str) -> str:
    """The name part of ``NAME[:ARG]``, or a one-line error suggesting the closest registered name."""
    name = str(spec).partition(":")[0]
    if name not in _REGISTRY:
        raise PathpruneError(f"unknown signal {name!r}{suggest(name, available_signals())}", parameter="signal",
                             value=spec)
    return name


def get_signal(spec: str | Signal) -> Signal:
    """Build a signal from ``NAME`` or ``NAME:ARG`` (an instance passes through)."""
    if isinstance(spec, Signal):
        return spec
    name = check_signal_name(spec)
    arg = str(spec).partition(":")[2]
    return _REGISTRY[name](arg or None)
