"""Pruning signals under one interface, with a registry for ``--signal NAME[:ARG]``."""

from . import confidence, similarity, simple, stop_signal  # noqa: F401  (registers the built-in signals)
from . import embedding, judge_signals, oracle  # noqa: F401  (embedding Type I, Type II judges, the oracle)
from ..engine.contract import CheckView, Signal
from ..engine.registry import available_signals, get_signal, register_signal

__all__ = ["CheckView", "Signal", "available_signals", "get_signal", "register_signal"]
