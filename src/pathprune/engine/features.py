"""Token-level features of a prefix, from what Launch records per generated token.

One definition each, shared by the Type III signals and by STOP's head features
(``StopConfig.head_features``), so a signal and a head that read "mean log-prob"
read the same number.
"""

from __future__ import annotations

import torch


def mean_logprob(logprobs: list[float]) -> float:
    """Mean of a prefix's token log-probabilities (0 for an empty prefix)."""
    return sum(logprobs) / max(1, len(logprobs))


def min_logprob(logprobs: list[float]) -> float:
    """The least likely token's log-probability (0 for an empty prefix)."""
    return min(logprobs, default=0.0)


LOGPROB_FEATURES = {"mean_logprob": mean_logprob, "min_logprob": min_logprob}
"""Prefix features a STOP head may read, by name."""


def token_confidence(top_logprobs: list[list[float]]) -> torch.Tensor:
    """(T,) token confidences ``C_i = -mean_j log P_i(j)`` from (T, k) top-k log-probabilities (DeepConf)."""
    if not top_logprobs:
        return torch.zeros(0)
    return -torch.tensor(top_logprobs, dtype=torch.float64).mean(-1)


def group_confidence(conf: torch.Tensor, window: int) -> torch.Tensor:
    """Means over every window of ``window`` consecutive tokens (one group if shorter)."""
    if len(conf) <= window:
        return conf.mean().reshape(1) if len(conf) else torch.zeros(1, dtype=conf.dtype)
    return conf.unfold(0, window, 1).mean(-1)


def entropy(logp: torch.Tensor) -> torch.Tensor:
    """Shannon entropy (nats) of each row of log-probabilities; banned tokens (-inf) count as 0 · log 0 = 0."""
    return -torch.where(logp > -torch.inf, logp.exp() * logp, 0.0).sum(-1)
