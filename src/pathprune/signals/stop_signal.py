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

    def module_for(self, model):
        """The checkpoint attached to ``model``, loaded once per model and shared by every signal
        object. Checkpoints without an adapter can share a model freely; a second critique adapter
        would stack LoRA layers on the same weights, so it needs its own copy of the model."""
        from ..errors import PathpruneError
        from ..stop.checkpoint import load_stop, read_config

        attached = model.__dict__.setdefault("_pathprune_stop", {})
        key = str(self.path.resolve())
        if key not in attached:
            with_adapter = [k for k, m in attached.items() if m.peft is not None]
            if with_adapter and read_config(self.path)[0].use_adapter:
                raise PathpruneError(f"this model already carries the STOP adapter of {with_adapter[0]}; "
                                     f"load the model again to score with {self.path}")
            attached[key] = load_stop(model, self.path)
        return attached[key]

    def score(self, view: CheckView) -> torch.Tensor:
        return self.module_for(view.batch.model).score_cached(view.batch)
