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
generating exactly as the base model (tested bit for bit).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

from .config import StopConfig, fingerprint


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
        self.peft = None
        if config.use_adapter:
            from peft import LoraConfig, get_peft_model

            lora = LoraConfig(r=config.rank, lora_alpha=config.alpha, lora_dropout=0.0,
                              target_modules=config.target_modules, bias="none")
            try:
                self.peft = get_peft_model(model, lora)
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
        self.peft.base_model.enable_adapter_layers()
        try:
            yield self.peft
        finally:
            self.disable_adapter()

    def trainable_parameters(self) -> list[nn.Parameter]:
        params = [self.stop_embeddings, *self.head.parameters()]
        if self.peft is not None:
            params += [p for n, p in self.peft.named_parameters() if "lora_" in n]
        return params

    def _stop_embeds(self, rows: int, dtype) -> torch.Tensor:
        e = self.stop_embeddings
        if len(e) == 1:
            e = e.expand(self.config.n_stop, -1)
        return e.to(dtype)[None].expand(rows, -1, -1)

    # -- scoring -----------------------------------------------------------------------
    def logits_cached(self, batch, grad: bool = False) -> torch.Tensor:
        """(R,) head logits for every row of a :class:`LiveBatch`, reusing its cache (restored after)."""
        dtype = self.base.get_input_embeddings().weight.dtype
        with self.adapter_on() as runner:
            out = batch.probe(inputs_embeds=self._stop_embeds(len(batch), dtype).to(batch.device),
                              model=runner, grad=grad)
        h = out.hidden_states[-1][:, -1].float()
        return self.head(h).squeeze(-1)

    @torch.no_grad()
    def score_cached(self, batch) -> torch.Tensor:
        """p(success) for every live path of a paused batch (the engine's Check)."""
        return torch.sigmoid(self.logits_cached(batch)).cpu()

    def logits_ids(self, prefixes: list[list[int]], pad_id: int, grad: bool = False) -> torch.Tensor:
        """Head logits for prefixes given as token ids (prompt + generated), each re-encoded once."""
        from ..engine.batch import LiveBatch

        batch = LiveBatch.launch(self.base, prefixes, 1, pad_id)  # adapter is off: base-model cache
        return self.logits_cached(batch, grad=grad)

    @torch.no_grad()
    def score_ids(self, prefixes: list[list[int]], pad_id: int, batch_size: int = 64) -> torch.Tensor:
        """p(success) for prefixes given as token ids (offline evaluation)."""
        out = [torch.sigmoid(self.logits_ids(prefixes[i:i + batch_size], pad_id))
               for i in range(0, len(prefixes), batch_size)]
        return torch.cat(out).cpu() if out else torch.zeros(0)
