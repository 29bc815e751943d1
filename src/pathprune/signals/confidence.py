"""Type III signals (internal, not learnable): mean log-probability, DeepConf-style confidence and entropy.

All of them read what Launch kept (per-token log-probabilities, top-k
log-probabilities, entropies): no extra forward pass, zero check tokens.

Definitions (DeepConf, Fu et al. 2025), for a prefix of tokens i = 1..T:

* token confidence ``C_i = -mean_j log P_i(j)`` over the top-k tokens at step i
  (a peaked distribution has a very negative tail, hence a high C_i);
* group confidence: the mean of C_i over a sliding window of ``w`` tokens;
* ``conf_mean``: mean C_i over the prefix; ``conf_lowest``: the lowest group;
  ``conf_bottom10``: the mean of the lowest 10 % of groups; ``conf_tail``:
  mean C_i over the last ``w`` tokens;
* ``neg_entropy``: minus the mean Shannon entropy (nats) of the next-token
  distributions;
* ``mean_logprob``: the mean log-probability of the sampled tokens (negative log-perplexity).

The window is the signal's argument, e.g. ``--signal conf_lowest:32``
(DeepConf uses 2,048 on real reasoning traces; default here 16, which suits
testbed prefixes of tens of tokens).
"""

from __future__ import annotations

import torch

from ..engine.contract import CheckView, Signal
from ..engine.features import group_confidence, mean_logprob, token_confidence
from ..engine.registry import register_signal
from ..errors import PathpruneError


class _Confidence(Signal):
    source, learnable = "internal", False
    needs = frozenset({"logprobs", "top_logprobs"})
    default_window = 16

    def __init__(self, arg: str | None = None) -> None:
        try:
            self.window = int(arg) if arg else self.default_window
        except ValueError:
            raise PathpruneError(f"{self.name}:W needs an integer window, got {arg!r}") from None
        if self.window < 1:
            raise PathpruneError(f"{self.name} window must be >= 1, got {self.window}")

    def reduce(self, conf: torch.Tensor) -> float:
        raise NotImplementedError

    def score(self, view: CheckView) -> torch.Tensor:
        if any(r.tokens and not r.top_logprobs for r in view.records):
            raise PathpruneError(f"{self.name} needs top-k log-probabilities; launch with top_logprobs >= 1")
        return torch.tensor([self.reduce(token_confidence(r.top_logprobs)) for r in view.records])


@register_signal("conf_mean")
class MeanConfidence(_Confidence):
    """Mean token confidence of the prefix."""

    name = "conf_mean"

    def reduce(self, conf):
        return conf.mean().item() if len(conf) else 0.0


@register_signal("conf_lowest")
class LowestGroupConfidence(_Confidence):
    """Lowest group confidence over sliding windows (a single weak stretch sinks the path)."""

    name = "conf_lowest"

    def reduce(self, conf):
        return group_confidence(conf, self.window).min().item()


@register_signal("conf_bottom10")
class Bottom10Confidence(_Confidence):
    """Mean of the lowest 10 % of group confidences (at least one group)."""

    name = "conf_bottom10"

    def reduce(self, conf):
        groups = group_confidence(conf, self.window)
        k = max(1, int(0.1 * len(groups)))
        return groups.topk(k, largest=False).values.mean().item()


@register_signal("conf_tail")
class TailConfidence(_Confidence):
    """Mean token confidence of the last ``window`` tokens."""

    name = "conf_tail"

    def reduce(self, conf):
        return conf[-self.window:].mean().item() if len(conf) else 0.0


@register_signal("neg_entropy")
class NegativeEntropy(Signal):
    """Minus the mean next-token entropy over the prefix (low entropy = confident)."""

    name, source, learnable = "neg_entropy", "internal", False
    needs = frozenset({"logprobs", "top_logprobs"})

    def __init__(self, arg: str | None = None) -> None:
        if arg:
            raise PathpruneError("neg_entropy takes no argument")

    def score(self, view: CheckView) -> torch.Tensor:
        if any(r.tokens and not r.entropies for r in view.records):
            raise PathpruneError("neg_entropy needs per-token entropies; launch with top_logprobs >= 1")
        return torch.tensor([-sum(r.entropies) / max(1, len(r.entropies)) for r in view.records])


@register_signal("mean_logprob")
class MeanLogprobSignal(Signal):
    """Mean log-probability of the prefix's tokens (negative log-perplexity), from what Launch kept."""

    name, source, learnable = "mean_logprob", "internal", False
    needs = frozenset({"logprobs"})

    def __init__(self, arg: str | None = None) -> None:
        if arg:
            raise PathpruneError("mean_logprob takes no argument")

    def score(self, view: CheckView) -> torch.Tensor:
        return torch.tensor([mean_logprob(r.logprobs) for r in view.records])
