"""Type IV (internal, learnable): STOP as an engine signal.

``--signal stop`` uses the checkpoint shipped for the testbed model;
``--signal stop:PATH`` any STOP checkpoint directory. The module is attached to
the engine's model on first use (its adapter stays off outside the check), and
scores every paused path by appending the [STOP] tokens to the live cache.
``--signal stop_lp`` is our extension shipped for the testbed: the same STOP
whose head also reads the prefix's mean log-probability (``head_features``),
which the engine already holds, so it costs the same check tokens as ``stop``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..engine.contract import CheckView, Signal
from ..engine.registry import register_signal

@dataclass(frozen=True)
class StopHead:
    """A STOP checkpoint's config and the head parts the vLLM path applies outside the engine."""

    config: object
    bias: float
    feature_head: torch.Tensor | None
    """``feature_head.weight`` (1, F) when the head reads log-probability features."""


TESTBED_STOP = Path(__file__).resolve().parent.parent / "stop" / "checkpoints" / "testbed"
TESTBED_STOP_LP = TESTBED_STOP.with_name("testbed-lp")


@register_signal("stop")
class StopSignal(Signal):
    """STOP: learned [STOP] tokens + critique adapter + head over the cached prefix (arXiv 2604.16029)."""

    name, source, learnable = "stop", "internal", True
    needs = frozenset({"cache"})

    def __init__(self, arg: str | None = None) -> None:
        self.path = Path(arg) if arg else TESTBED_STOP

    def validate(self) -> None:
        """The checkpoint's files, checked whole without a model (config, head, adapter, shapes)."""
        from ..stop.checkpoint import check_stop

        check_stop(self.path)

    def module_for(self, model):
        """The checkpoint attached to ``model``, loaded once per model and shared by every signal
        object (several checkpoints share a model: each activates only its own named adapter)."""
        from ..stop.checkpoint import load_stop

        attached = model.__dict__.setdefault("_pathprune_stop", {})
        key = str(self.path.resolve())
        if key not in attached:
            attached[key] = load_stop(model, self.path)
        return attached[key]

    def vllm_overrides(self, model_dir) -> dict:
        """Run this checkpoint inside the vLLM engine (:mod:`pathprune.stop.vllm_plugin`)."""
        from ..models.loading import load_tokenizer
        from ..stop.vllm_plugin import overrides

        return overrides(self.path, Path(model_dir), load_tokenizer(Path(model_dir)))

    def score(self, view: CheckView) -> torch.Tensor:
        if not view.in_process:  # the engine's model plugin computes w . h; the bias is added here
            return self._score_vllm(view)
        return self.module_for(view.batch.model).score_cached(view.batch)

    def vllm_stop(self) -> StopHead:
        """What the vLLM path adds to the plugin's ``w . h`` on our side (loaded once)."""
        if not hasattr(self, "_head"):
            from safetensors.torch import load_file

            from ..stop.checkpoint import read_config

            tensors = load_file(self.path / "stop_head.safetensors")
            self._head = StopHead(read_config(self.path)[0], float(tensors["head.bias"][0]),
                                  tensors.get("feature_head.weight"))
        return self._head

    def _score_vllm(self, view: CheckView) -> torch.Tensor:
        from ..stop.module import standardised_features
        from ..stop.vllm_plugin import READ_IDS, stop_marker_id

        head = self.vllm_stop()
        logp = view.batch.read([stop_marker_id(view.tokenizer)] * head.config.n_stop, list(READ_IDS))
        logits = logp[:, 0] - logp[:, 1] + head.bias
        if head.feature_head is not None:
            features = standardised_features([r.logprobs for r in view.records], head.config)
            logits = logits + features @ head.feature_head[0]
        return torch.sigmoid(logits)


@register_signal("stop_lp")
class StopLogprobSignal(StopSignal):
    """STOP whose head also reads the prefix's mean log-probability (our extension; testbed checkpoint)."""

    name = "stop_lp"
    needs = frozenset({"cache", "logprobs"})

    def __init__(self, arg: str | None = None) -> None:
        self.path = Path(arg) if arg else TESTBED_STOP_LP
