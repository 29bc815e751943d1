"""The signal registry lives with the engine (:mod:`pathprune.engine.registry`); re-exported here."""

from ..engine.registry import available_signals, check_signal_name, get_signal, register_signal

__all__ = ["available_signals", "check_signal_name", "get_signal", "register_signal"]
