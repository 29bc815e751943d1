"""Train a STOP module on Monte-Carlo labels (the loop, losses and epoch selection: :mod:`.training`).

What is STOP's own: the trainable parameters are the [STOP] embedding(s), the head and the critique
adapter on a frozen backbone; a head with ``head_features`` reads prefix log-probabilities, computed
once (the backbone is frozen) and standardised with the training prefixes' statistics. For the same reason
every prefix's base-model cache is computed once (:func:`~pathprune.stop.module.encode_prefixes`) when it fits in
:data:`PREFIX_CACHE_LIMIT`; an epoch then runs only the [STOP] tokens over it.
"""

from __future__ import annotations

import torch

from ..engine.batch import LiveBatch
from .checkpoint import save_stop
from .config import StopConfig, model_name
from .evaluate import prefix_logprobs
from .module import StopModule, encode_prefixes, logprob_features
from .scorer_training import Trainee, TrainConfig, fit


def stop_token_id(tokenizer) -> int | None:
    return tokenizer.convert_tokens_to_ids("[STOP]") if "[STOP]" in tokenizer.get_vocab() else None


PREFIX_CACHE_LIMIT = 8 * 2**30
"""Bytes of prefix KV cache training may hold (all training and validation prefixes); above it (large models,
long prefixes, many records) every step re-encodes its batch's prefixes instead."""


def prefix_cache_bytes(model, prefixes: list[list[int]]) -> int:
    """The base-model KV cache of ``prefixes`` in bytes (keys and values of every layer)."""
    cfg = model.config
    heads = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    itemsize = next(model.parameters()).element_size()
    return 2 * cfg.num_hidden_layers * heads * head_dim * itemsize * sum(map(len, prefixes))


def train_stop(model, tokenizer, train: list[dict], val: list[dict], stop_cfg: StopConfig,
               cfg: TrainConfig, out, progress=None, encoded: tuple[list, list] | None = None) -> dict:
    """Train and save the best epoch to ``out``; returns {"history": [...], "best": {...}, "seconds": ...}.

    ``encoded``: the (train, val) prefix caches from :func:`~pathprune.stop.module.encode_prefixes` of the same
    base model, to share between several trainings on the same labels (they do not depend on STOP's settings).
    """
    if not stop_cfg.base_model:
        stop_cfg.base_model = model_name(getattr(model, "name_or_path", "") or "")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    val_ids = [r["prefix_token_ids"] for r in val]

    def build(device) -> Trainee:
        train_lp = val_lp = None
        if stop_cfg.head_features:  # constant inputs (frozen backbone): computed once, standardised on train
            train_lp, val_lp = prefix_logprobs(model, tokenizer, train), prefix_logprobs(model, tokenizer, val)
            raw = logprob_features(train_lp, stop_cfg.head_features)
            stop_cfg.feature_mean = raw.mean(0).tolist()
            stop_cfg.feature_std = raw.std(0).clamp(min=1e-6).tolist()
        module = StopModule(model, stop_cfg, stop_token_id(tokenizer)).to(device)
        train_ids = [r["prefix_token_ids"] for r in train]
        caches = encoded
        if caches is None and prefix_cache_bytes(model, train_ids + val_ids) <= PREFIX_CACHE_LIMIT:
            caches = encode_prefixes(module.base, train_ids, pad), encode_prefixes(module.base, val_ids, pad)
        train_cache, val_cache = caches or (None, None)

        def logits(idx: list[int], cache=train_cache, ids=train_ids, lp=train_lp, grad=True) -> torch.Tensor:
            features = None if lp is None else [lp[i] for i in idx]
            if cache is None:  # too large to hold: re-encode this batch's prefixes
                return module.logits_ids([ids[i] for i in idx], pad, grad=grad, logprobs=features)
            return module.logits_cached(LiveBatch.stack([cache[i] for i in idx]), grad=grad, logprobs=features)

        @torch.no_grad()
        def val_probs() -> list[float]:
            return torch.cat([torch.sigmoid(logits(list(range(i, min(i + 64, len(val_ids)))), val_cache, val_ids,
                                                   val_lp, grad=False)) for i in range(0, len(val_ids), 64)]).tolist()

        return Trainee(parameters=module.trainable_parameters(), logits=logits, val_probs=val_probs,
                       save=lambda record: save_stop(module, out, record))

    return fit(build, train, val, cfg, out, progress)
