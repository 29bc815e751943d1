"""STOP's configuration and the base-model fingerprint that guards checkpoints."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field


HEAD_FEATURES = ("mean_logprob", "min_logprob")
"""Prefix features the head may read (our extension): the mean and the lowest log-probability of the
generated tokens, at temperature 1 with the engine's suppressed tokens removed (as Launch records them)."""


@dataclass
class StopConfig:
    """What defines a STOP module (saved in ``stop_config.json``)."""

    n_stop: int = 4
    """Appended [STOP] tokens (the paper's sweep peaks at 4–6)."""
    distinct_tokens: bool = False
    """One learned embedding per position instead of one shared embedding (official code: shared)."""
    use_adapter: bool = True
    """False = the paper's "w/o adapter" ablation: a head on the raw hidden state of the [STOP] tokens."""
    rank: int = 16
    """LoRA rank of the critique adapter (paper: 128 for 1.5B models)."""
    alpha: int = 32
    """LoRA alpha (paper: 2 x rank)."""
    target_modules: str | list[str] = "all-linear"
    """Adapter targets; all linear layers by default (paper), the LM head excluded."""
    head_features: list[str] = field(default_factory=list)
    """Our extension (not in the paper): token-confidence features of the prefix that the head reads
    beside the last [STOP] hidden state, from :data:`HEAD_FEATURES` (e.g. ``["mean_logprob"]``).
    The [STOP] tokens attend to keys and values, never to the base model's output distribution,
    so they cannot see how probable each written token was; these features give the head that."""
    feature_mean: list[float] = field(default_factory=list)
    """Per-feature mean over the training prefixes (the head reads standardised features)."""
    feature_std: list[float] = field(default_factory=list)
    """Per-feature standard deviation over the training prefixes."""
    base_fingerprint: dict = field(default_factory=dict)
    """Filled when attached: architecture, vocabulary, shape and a hash of a few weights."""

    def __post_init__(self) -> None:
        from ..errors import PathpruneError

        if self.n_stop < 1:
            raise PathpruneError(f"n_stop must be >= 1, got {self.n_stop}", parameter="n_stop", value=self.n_stop)
        if self.rank < 1:
            raise PathpruneError(f"rank must be >= 1, got {self.rank}", parameter="rank", value=self.rank)
        unknown = [f for f in self.head_features if f not in HEAD_FEATURES]
        if unknown or len(set(self.head_features)) != len(self.head_features):
            raise PathpruneError(f"head_features must be distinct names from {', '.join(HEAD_FEATURES)}, "
                                 f"got {self.head_features}", parameter="head_features", value=self.head_features)

    def to_dict(self) -> dict:
        return asdict(self)


def fingerprint(model) -> dict:
    """Identify a base model: architecture, vocab, shape, and a SHA-256 of slices of a few weights."""
    cfg = model.config
    h = hashlib.sha256()
    emb = model.get_input_embeddings().weight
    last = [p for n, p in model.named_parameters() if "lora_" not in n][-1]  # a carried adapter changes nothing
    for t in (emb[:8], emb[-8:], last):
        h.update(t.detach().float().cpu().contiguous().numpy().tobytes()[:65536])
    return {
        "architecture": type(model).__name__,
        "vocab_size": int(cfg.vocab_size),
        "hidden_size": int(cfg.hidden_size),
        "num_hidden_layers": int(cfg.num_hidden_layers),
        "weights_sha256": h.hexdigest()[:16],
    }
