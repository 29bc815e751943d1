"""Type IV (internal, learnable): STOP as an engine signal.

``--signal stop`` uses the checkpoint shipped for the testbed model;
``--signal stop:PATH`` any STOP checkpoint directory. The module is attached to
the engine's model on first use (its adapter stays off outside the check), and
scores every paused path by appending the [STOP] tokens to the live cache.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .base import CheckView, Signal
from .registry import register_signal

TESTBED_STOP = Path(__file__).resolve().parent.parent / "stop" / "checkpoints" / "testbed"


@register_signal("stop")
class StopSignal(Signal):
    """STOP: learned [STOP] tokens + critique adapter + head over the cached prefix (arXiv 2604.16029)."""

    name, source, learnable = "stop", "internal", True
    needs = frozenset({"cache"})

    def __init__(self, arg: str | None = None) -> None:
        self.path = Path(arg) if arg else TESTBED_STOP
        self._module = None
        self._model_id = None

    def module_for(self, model):
        from ..stop.checkpoint import load_stop

        if self._module is None or self._model_id != id(model):
            self._module, self._model_id = load_stop(model, self.path), id(model)
        return self._module

    def score(self, view: CheckView) -> torch.Tensor:
        return self.module_for(view.batch.model).score_cached(view.batch)
