"""STOP as a vLLM model class: the base model, plus STOP only where the input id is [STOP].

Registered by :func:`pathprune.stop.vllm_plugin.register`; selected by the engine overrides of
:func:`pathprune.stop.vllm_plugin.overrides`. At positions whose input id is the [STOP] marker the model
uses STOP's learned embedding and adds the critique LoRA's delta to every adapted projection; every other
position runs the untouched base model. That gate keeps vLLM's prefix cache valid: a block's KV depends
only on its token ids (as the cache's hash assumes), every prefix block is base-model KV shared with
generation, and a check request computes only its partial last block and the n_stop [STOP] tokens.

For a request whose last input is [STOP] (a check), the head's ``w . h`` of the final hidden state is
written into logit row ``READ_IDS[0]`` (row ``READ_IDS[1]`` = 0, every other row -inf), which the caller
reads through ``SamplingParams.logprob_token_ids``: no hidden states and no pooling runner needed. [STOP]
is never sampled by any other request.

The gated delta is a hand-written LoRA on vLLM's fused projections (q/k/v in ``qkv_proj``, gate/up in
``gate_up_proj``): single-GPU only (no tensor-parallel sharding), and its data-dependent row selection
needs eager mode (``enforce_eager=True``) when [STOP] tokens are present.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn
from vllm.forward_context import get_forward_context
from vllm.model_executor.models.llama import LlamaForCausalLM
from vllm.model_executor.models.qwen2 import Qwen2ForCausalLM

from .vllm_plugin import READ_IDS

_LORA_KEY = re.compile(r"layers\.(\d+)\.(?:self_attn|mlp)\.(\w+_proj)\.lora_([AB])\.weight$")


class _Rows:
    """The flattened positions of [STOP] tokens in the forward pass under way (None: none)."""

    index: torch.Tensor | None = None


class GatedLoRA(nn.Module):
    """A vLLM linear layer plus LoRA deltas on the [STOP] rows only, one (A, B, scale) per output slice."""

    def __init__(self, base: nn.Module, pieces: list[tuple[torch.Tensor, torch.Tensor, float] | int],
                 rows: _Rows):
        super().__init__()
        self.base, self.rows = base, rows
        self.pieces = pieces  # (A, B, scale) or, for a slice the adapter does not touch, its width

    def forward(self, x: torch.Tensor):
        out = self.base(x)
        index = self.rows.index
        if index is None:
            return out
        y, bias = out if isinstance(out, tuple) else (out, None)
        xs = x[index].float()
        parts = [xs.new_zeros(len(index), p) if isinstance(p, int) else (xs @ p[0].T) @ p[1].T * p[2]
                 for p in self.pieces]
        y = y.index_add(0, index, torch.cat(parts, dim=-1).to(y.dtype))
        return (y, bias) if isinstance(out, tuple) else y


class StopMixin:
    """STOP on top of a vLLM causal-LM class (``class StopX(StopMixin, X)``)."""

    def __init__(self, *, vllm_config, prefix: str = ""):
        super().__init__(vllm_config=vllm_config, prefix=prefix)
        hf = vllm_config.model_config.hf_config
        self.stop_dir = getattr(hf, "pathprune_stop", None)
        self.stop_id = int(getattr(hf, "pathprune_stop_token_id", -1))
        self.stop_rows = _Rows()
        self.check_rows: torch.Tensor | None = None
        self.stop_ready = False

    # -- loading -----------------------------------------------------------------------------
    def load_weights(self, weights):
        loaded = super().load_weights(weights)
        if self.stop_dir:  # after the base weights: wrapped layers would no longer match the checkpoint's names
            self._load_stop(Path(self.stop_dir))
        return loaded

    def _load_stop(self, path: Path) -> None:
        from vllm.distributed import get_tensor_model_parallel_world_size

        if get_tensor_model_parallel_world_size() != 1:
            raise ValueError("pathprune's STOP plugin runs on one device (tensor_parallel_size=1)")
        weight = self.model.embed_tokens.weight
        head = load_file(path / "stop_head.safetensors", device=str(weight.device))
        self.stop_w = head["head.weight"][0].float()
        self.stop_embeddings = head["stop_embeddings"].to(weight.dtype)
        config = json.loads((path / "stop_config.json").read_text())
        if config.get("use_adapter", True):
            self._wrap(path / "adapter", weight.device)
        self.stop_ready = True

    def _wrap(self, adapter: Path, device) -> None:
        lora = json.loads((adapter / "adapter_config.json").read_text())
        r, alpha = lora["r"], lora["lora_alpha"]
        scale = alpha / (r ** 0.5 if lora.get("use_rslora") else r)
        pairs: dict[tuple[int, str], dict[str, torch.Tensor]] = {}
        for name, t in load_file(adapter / "adapter_model.safetensors", device=str(device)).items():
            if m := _LORA_KEY.search(name):
                pairs.setdefault((int(m[1]), m[2]), {})[m[3]] = t.float()
        inter = self.config.intermediate_size
        for i, layer in enumerate(self.model.layers):
            attn, mlp = layer.self_attn, layer.mlp
            slots = {(attn, "qkv_proj"): [("q_proj", attn.q_size), ("k_proj", attn.kv_size), ("v_proj", attn.kv_size)],
                     (attn, "o_proj"): [("o_proj", self.config.hidden_size)],
                     (mlp, "gate_up_proj"): [("gate_proj", inter), ("up_proj", inter)],
                     (mlp, "down_proj"): [("down_proj", self.config.hidden_size)]}
            for (owner, attr), names in slots.items():
                pieces = [(pairs[(i, n)]["A"], pairs[(i, n)]["B"], scale) if (i, n) in pairs else width
                          for n, width in names]
                if any(not isinstance(p, int) for p in pieces):
                    setattr(owner, attr, GatedLoRA(getattr(owner, attr), pieces, self.stop_rows))

    # -- running -----------------------------------------------------------------------------
    def _stop_embeds(self, index: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        e = self.stop_embeddings
        if len(e) == 1:
            return e.expand(len(index), -1)
        pos = positions[index]  # distinct [STOP] tokens: the k-th of each run gets embedding k
        start = torch.ones_like(index, dtype=torch.bool)
        start[1:] = index[1:] != index[:-1] + 1
        run = start.long().cumsum(0) - 1
        return e[(pos - pos[start][run]).clamp(max=len(e) - 1)]

    def forward(self, input_ids, positions, intermediate_tensors=None, inputs_embeds=None, **kwargs):
        self.check_rows = None
        at = None if not self.stop_ready or input_ids is None else input_ids == self.stop_id
        if at is None or not bool(at.any()):  # the normal decode path: one comparison, nothing else
            return super().forward(input_ids, positions, intermediate_tensors, inputs_embeds, **kwargs)
        index = at.nonzero().squeeze(-1)
        embeds = self.embed_input_ids(input_ids) if inputs_embeds is None else inputs_embeds.clone()
        embeds[index] = self._stop_embeds(index, positions).to(embeds.dtype)
        metadata = get_forward_context().attn_metadata
        meta = next(iter(metadata.values())) if isinstance(metadata, dict) else metadata
        self.check_rows = input_ids[meta.query_start_loc[1:] - 1] == self.stop_id  # requests ending in [STOP]
        self.stop_rows.index = index
        try:
            return super().forward(input_ids, positions, intermediate_tensors, embeds, **kwargs)
        finally:
            self.stop_rows.index = None

    def compute_logits(self, hidden_states: torch.Tensor):
        logits = super().compute_logits(hidden_states)
        if logits is None or not self.stop_ready:
            return logits
        logits[:, self.stop_id] = float("-inf")  # [STOP] is never sampled
        check, self.check_rows = self.check_rows, None
        if check is not None and bool(check.any()):
            if len(check) != len(logits):
                raise RuntimeError(f"STOP plugin: {len(logits)} logit rows for {len(check)} requests")
            rows = check.nonzero().squeeze(-1)
            value = hidden_states[rows].float() @ self.stop_w
            logits[rows] = float("-inf")
            logits[rows, READ_IDS[0]] = value.to(logits.dtype)
            logits[rows, READ_IDS[1]] = 0.0
        return logits


class StopQwen2ForCausalLM(StopMixin, Qwen2ForCausalLM):
    pass


class StopLlamaForCausalLM(StopMixin, LlamaForCausalLM):
    pass
