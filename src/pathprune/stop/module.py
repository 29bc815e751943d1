"""The STOP module: learned [STOP] tokens, a critique adapter active only on them, and a head.

Scoring is a two-stage pass, exactly as in the paper and the official code:
the prefix's keys and values come from the *untouched* base model (in the
engine they are the live cache Launch already built), then the ``n_stop``
[STOP] embeddings run over that cache with the LoRA adapter switched on, and
a linear head reads the final hidden state of the last [STOP] position:
p(success) = sigmoid(w . h + b).

This is what PEFT's activated LoRA (``alora_invocation_tokens``) computes in a
single pass (adapter only from the invocation tokens on); with a reused base
cache the two-stage pass is the same computation, needs no invocation string
in the vocabulary, and keeps the adapter a plain LoRA that
``PeftModel.from_pretrained`` loads.

The adapter is attached to the caller's model but kept *disabled* except
inside :meth:`StopModule.adapter_on`, so the same model object keeps
generating exactly as the base model (tested bit for bit). Several STOP
modules can share one model: each owns a named PEFT adapter on the same LoRA
layers and activates only its own.

Our extension (``StopConfig.head_features``): the head may also read token
log-probability features of the prefix (e.g. its mean log-probability). They
cost nothing in the engine (Launch kept the log-probabilities); offline they
come from the same re-encoding (:func:`pathprune.stop.evaluate.prefix_logprobs`).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

from ..engine.features import LOGPROB_FEATURES
from .config import StopConfig, fingerprint

_SHARED = "_pathprune_peft"  # the PeftModel shared by every STOP module attached to one base model


def attach_adapter(model, lora=None, path=None):
    """Add a LoRA adapter (new from ``lora`` or loaded from ``path``) to ``model``; returns (PeftModel, name).

    The first adapter is PEFT's "default" (saved in the standard layout); later ones get their own
    names on the same LoRA layers instead of stacking a second wrapper on the same weights.
    """
    from peft import PeftModel, get_peft_model

    shared = model.__dict__.get(_SHARED)
    if shared is None:
        peft = get_peft_model(model, lora) if path is None else PeftModel.from_pretrained(model, str(path))
        model.__dict__[_SHARED] = peft
        return peft, "default"
    name = f"stop{len(shared.peft_config)}"
    if path is None:
        shared.add_adapter(name, lora)
    else:
        shared.load_adapter(str(path), adapter_name=name)
    return shared, name


@torch.no_grad()
def encode_prefixes(model, prefixes: list[list[int]], pad_id: int, batch_size: int = 32) -> list:
    """Each prefix's base-model cache as a one-row :class:`~pathprune.engine.batch.LiveBatch`, computed once.

    The backbone is frozen and STOP's adapter is off on prefix tokens, so this cache never changes while STOP
    trains (whatever its settings): epochs regroup it with ``LiveBatch.stack`` and run only the [STOP] tokens,
    instead of re-encoding every prefix every epoch."""
    from ..engine.batch import LiveBatch

    out = []
    for i in range(0, len(prefixes), batch_size):
        out += LiveBatch.launch(model, prefixes[i:i + batch_size], 1, pad_id).split()
    return out


def logprob_features(logprobs: list[list[float]], names: list[str]) -> torch.Tensor:
    """(R, F) raw head features from each prefix's generated-token log-probabilities."""
    return torch.tensor([[LOGPROB_FEATURES[n](lp) for n in names] for lp in logprobs], dtype=torch.float32)


def standardised_features(logprobs: list[list[float]], cfg: StopConfig) -> torch.Tensor:
    """(R, F) head features standardised with the checkpoint's training statistics."""
    raw = logprob_features(logprobs, cfg.head_features)
    mean = torch.tensor(cfg.feature_mean or [0.0] * raw.shape[1])
    std = torch.tensor(cfg.feature_std or [1.0] * raw.shape[1])
    return (raw - mean) / std


class StopModule(nn.Module):
    """STOP on a frozen backbone. Build with ``StopModule(model, StopConfig(...))``."""

    def __init__(self, model, config: StopConfig, stop_token_id: int | None = None):
        super().__init__()
        from ..errors import PathpruneError

        self.config = config
        self.base = model
        for p in model.parameters():
            p.requires_grad_(False)
        if not config.base_fingerprint:
            config.base_fingerprint = fingerprint(model)
        emb = model.get_input_embeddings().weight.detach()
        init = emb[stop_token_id] if stop_token_id is not None and stop_token_id < len(emb) else emb.mean(0)
        n_emb = config.n_stop if config.distinct_tokens else 1
        self.stop_embeddings = nn.Parameter(init.float().repeat(n_emb, 1).clone())
        hidden = model.config.hidden_size
        self.head = nn.Linear(hidden, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.feature_head = None
        if config.head_features:
            self.feature_head = nn.Linear(len(config.head_features), 1, bias=False)
            nn.init.zeros_(self.feature_head.weight)
        self.head.to(emb.device)  # the base model's device (a GPU model scores on the GPU)
        if self.feature_head is not None:
            self.feature_head.to(emb.device)
        self.peft, self.adapter_name = None, None
        if config.use_adapter:
            from peft import LoraConfig

            lora = LoraConfig(r=config.rank, lora_alpha=config.alpha, lora_dropout=0.0,
                              target_modules=config.target_modules, bias="none")
            try:
                self.peft, self.adapter_name = attach_adapter(model, lora)
            except ValueError as err:
                raise PathpruneError(f"cannot attach the critique adapter: {str(err).splitlines()[0]}") from None
            self.disable_adapter()

    # -- adapter switching -------------------------------------------------------------
    def disable_adapter(self) -> None:
        """Switch the adapter off (the model generates as the base model).

        PEFT's ``disable_adapter_layers`` also sets ``requires_grad=False`` on the
        LoRA weights; a backward pass that runs after the [STOP] pass (always,
        in training) would then leave them untouched, so they are re-marked
        trainable: a disabled adapter is skipped by the forward pass anyway.
        """
        self.peft.base_model.disable_adapter_layers()
        for name, p in self.peft.named_parameters():
            if "lora_" in name:
                p.requires_grad_(True)

    @contextmanager
    def adapter_on(self):
        """Enable the critique adapter for the [STOP] pass only."""
        if self.peft is None:
            yield self.base
            return
        self.peft.set_adapter(self.adapter_name)
        self.peft.base_model.enable_adapter_layers()
        try:
            yield self.peft
        finally:
            self.disable_adapter()

    def trainable_parameters(self) -> list[nn.Parameter]:
        params = [self.stop_embeddings, *self.head.parameters()]
        if self.feature_head is not None:
            params.append(self.feature_head.weight)
        if self.peft is not None:
            params += [p for n, p in self.peft.named_parameters() if "lora_" in n and f".{self.adapter_name}." in n]
        return params

    def _stop_embeds(self, rows: int, dtype) -> torch.Tensor:
        e = self.stop_embeddings
        if len(e) == 1:
            e = e.expand(self.config.n_stop, -1)
        return e.to(dtype)[None].expand(rows, -1, -1)

    # -- scoring -----------------------------------------------------------------------
    def features(self, logprobs: list[list[float]]) -> torch.Tensor:
        """(R, F) standardised head features (training statistics) from generated-token log-probabilities."""
        return standardised_features(logprobs, self.config)

    def logits_cached(self, batch, grad: bool = False, logprobs: list[list[float]] | None = None) -> torch.Tensor:
        """(R,) head logits for every row of a :class:`LiveBatch`, reusing its cache (restored after).

        ``logprobs`` (only read when the head has features) default to what Launch recorded per path.
        """
        dtype = self.base.get_input_embeddings().weight.dtype
        with self.adapter_on() as runner:
            out = batch.probe(inputs_embeds=self._stop_embeds(len(batch), dtype).to(batch.device),
                              model=runner, grad=grad)
        h = out.hidden_states[-1][:, -1].float()
        logits = self.head(h).squeeze(-1)
        if self.feature_head is not None:
            lp = logprobs if logprobs is not None else [r.logprobs for r in batch.records]
            logits = logits + self.feature_head(self.features(lp).to(logits.device)).squeeze(-1)
        return logits

    @torch.no_grad()
    def score_cached(self, batch) -> torch.Tensor:
        """p(success) for every live path of a paused batch (the engine's Check)."""
        return torch.sigmoid(self.logits_cached(batch)).cpu()

    def logits_ids(self, prefixes: list[list[int]], pad_id: int, grad: bool = False,
                   logprobs: list[list[float]] | None = None) -> torch.Tensor:
        """Head logits for prefixes given as token ids (prompt + generated), each re-encoded once.

        A head with features needs each prefix's generated-token ``logprobs``
        (:func:`pathprune.stop.evaluate.prefix_logprobs`): token ids alone do not say where
        the prompt ends.
        """
        from ..engine.batch import LiveBatch
        from ..errors import PathpruneError

        if self.feature_head is not None and logprobs is None:
            raise PathpruneError(f"this STOP checkpoint's head reads {', '.join(self.config.head_features)} of the "
                                 "generated tokens; token ids alone do not give them (pass logprobs=)")
        batch = LiveBatch.launch(self.base, prefixes, 1, pad_id)  # adapter is off: base-model cache
        return self.logits_cached(batch, grad=grad, logprobs=logprobs)

    @torch.no_grad()
    def score_ids(self, prefixes: list[list[int]], pad_id: int, batch_size: int = 64,
                  logprobs: list[list[float]] | None = None) -> torch.Tensor:
        """p(success) for prefixes given as token ids (offline evaluation)."""
        out = [torch.sigmoid(self.logits_ids(prefixes[i:i + batch_size], pad_id,
                                             logprobs=None if logprobs is None else logprobs[i:i + batch_size]))
               for i in range(0, len(prefixes), batch_size)]
        return torch.cat(out).cpu() if out else torch.zeros(0)
