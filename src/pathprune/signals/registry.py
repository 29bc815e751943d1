"""Name → signal factory, so ``--signal NAME[:ARG]`` works from the CLI."""

from __future__ import annotations

import difflib
from typing import Callable

from ..errors import PathpruneError
from .base import Signal

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


def get_signal(spec: str | Signal) -> Signal:
    """Build a signal from ``NAME`` or ``NAME:ARG`` (an instance passes through)."""
    if isinstance(spec, Signal):
        return spec
    name, _, arg = str(spec).partition(":")
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; available: {', '.join(available_signals())}"
        raise PathpruneError(f"unknown signal {name!r}{hint}", parameter="signal", value=spec)
    return _REGISTRY[name](arg or None)
