"""The Signal interface lives with the engine (:mod:`pathprune.engine.contract`); re-exported here."""

from ..engine.contract import CheckView, Signal

__all__ = ["CheckView", "Signal"]
