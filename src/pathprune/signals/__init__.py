"""Pruning signals under one interface, with a registry for ``--signal NAME[:ARG]``."""

from . import confidence, random_signal, similarity, stop_signal  # noqa: F401  (registers the built-in signals)
from . import embedding, oracle  # noqa: F401  (embedding Type I, the oracle)
from .judges import signals as judge_signals  # noqa: F401  (Type II judges)
from ..engine.contract import CheckView, Signal
from ..engine.registry import available_signals, get_signal, register_signal

__all__ = ["CheckView", "Signal", "available_signals", "get_signal", "register_signal"]
