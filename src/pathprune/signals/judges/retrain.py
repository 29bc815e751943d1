"""The paper's "Type II-retrain" control: a separate judge model trained on STOP's Monte-Carlo labels.

The judge is a *separate* copy of a transformer (for the testbed: a fresh load of the
testbed model, its own weights, fully fine-tuned) with a linear classification head on the
final hidden state of the last token (``pooling="last"``) or the mean over tokens
(``"mean"``): p(success) = sigmoid(w . h + b). Its input is *text*: the decoded question and
prefix, re-tokenized by the judge's own tokenizer (``question + "\\n" + prefix``), so it sees
what an external verifier sees and nothing of the generator's internal state, and every
prefix is re-encoded from scratch (the cost the signal charges).

Training (``pathprune train --judge``) uses the same records as STOP (``read_labels``) and the
same loss (soft binary cross-entropy against the Monte-Carlo label), validates on held-out
problems every epoch and keeps the epoch with the lowest validation MSE.

Checkpoint directory (written atomically)::

    judge_config.json        JudgeConfig, format version, training provenance and metrics
    judge_head.safetensors   head.weight (1, H), head.bias (1,)
    backbone/                a Hugging Face base model (config.json, model.safetensors) + its tokenizer
"""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
from torch import nn

from ...errors import PathpruneError
from ...stop.train import TrainConfig

FORMAT_VERSION = 1
KIND = "pathprune-judge"


@dataclass
class JudgeConfig:
    pooling: str = "last"
    """``last``: the last token's final hidden state; ``mean``: the mean over the input's tokens."""
    max_length: int | None = None
    """Longest input in judge tokens (default: the backbone's context); longer inputs keep their end."""
    base_model: str = ""
    """What the backbone was initialised from (provenance only)."""
    labels: dict = field(default_factory=dict)
    """Provenance of the training labels (the generator that produced them)."""

    def __post_init__(self) -> None:
        if self.pooling not in ("last", "mean"):
            raise PathpruneError(f"judge pooling must be 'last' or 'mean', got {self.pooling!r}")


@dataclass
class TrainJudgeConfig(TrainConfig):
    """The judge fine-tunes a whole backbone: fewer epochs, a gentler learning rate than STOP."""

    epochs: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.0


def judge_text(question: str, prefix: str) -> str:
    """The judge's input text (one definition for training and scoring)."""
    return f"{question}\n{prefix}"


def record_text(record: dict, tokenizer) -> str:
    """A label record's text: its prompt and generated prefix decoded by the generator's tokenizer.
    Records without ``prompt_len`` (the official STOP format) are decoded as one text."""
    ids, n = record["prefix_token_ids"], record.get("prompt_len")
    if not n:
        return tokenizer.decode(ids, skip_special_tokens=True)
    return judge_text(tokenizer.decode(ids[:n], skip_special_tokens=True),
                      tokenizer.decode(ids[n:], skip_special_tokens=True))


class Judge(nn.Module):
    """A separate transformer + linear head that scores prefix *text*."""

    def __init__(self, backbone, tokenizer, config: JudgeConfig | None = None):
        super().__init__()
        self.backbone, self.tokenizer = backbone, tokenizer
        self.config = config or JudgeConfig()
        self.head = nn.Linear(backbone.config.hidden_size, 1)
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    @classmethod
    def from_base(cls, spec: str, config: JudgeConfig | None = None, seed: int = 0) -> Judge:
        """A fresh, separate copy of model ``spec`` (name, HF directory or GGUF) as the judge's backbone."""
        from ...models import load_model

        model, tok = load_model(spec)
        backbone = getattr(model, model.base_model_prefix, model)
        config = config or JudgeConfig()
        config.base_model = config.base_model or str(spec)
        torch.manual_seed(seed)
        return cls(backbone, tok, config)

    @property
    def max_length(self) -> int:
        limit = getattr(self.backbone.config, "max_position_embeddings", None) or 10**9
        return min(self.config.max_length or limit, limit)

    def encode(self, texts: list[str]) -> list[list[int]]:
        """Judge token ids of ``texts``; inputs longer than the context keep their last tokens."""
        return [list(ids)[-self.max_length:] for ids in self.tokenizer(list(texts)).input_ids]

    def logits_ids(self, inputs: list[list[int]], grad: bool = False) -> torch.Tensor:
        """(B,) head logits for token-id inputs (right-padded: padding is never attended)."""
        device = next(self.parameters()).device
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        width = max(map(len, inputs))
        ids = torch.full((len(inputs), width), pad, dtype=torch.long)
        mask = torch.zeros((len(inputs), width), dtype=torch.long)
        for row, seq in enumerate(inputs):
            ids[row, :len(seq)] = torch.tensor(seq, dtype=torch.long)
            mask[row, :len(seq)] = 1
        ids, mask = ids.to(device), mask.to(device)
        with torch.set_grad_enabled(grad):
            hidden = self.backbone(input_ids=ids, attention_mask=mask).last_hidden_state.float()
            if self.config.pooling == "last":
                lengths = mask.sum(-1) - 1
                pooled = hidden[torch.arange(len(inputs), device=device), lengths]
            else:
                pooled = (hidden * mask[..., None]).sum(1) / mask.sum(-1, keepdim=True)
            return self.head(pooled).squeeze(-1)

    @torch.no_grad()
    def score_ids(self, inputs: list[list[int]], batch_size: int = 64) -> torch.Tensor:
        """p(success) for token-id inputs."""
        out = [torch.sigmoid(self.logits_ids(inputs[i:i + batch_size])).cpu()
               for i in range(0, len(inputs), batch_size)]
        return torch.cat(out) if out else torch.zeros(0)


def save_judge(judge: Judge, path: str | Path, extra: dict | None = None) -> Path:
    """Write ``judge`` to the directory ``path`` (atomically: never half-written)."""
    from safetensors.torch import save_file

    from ...stop.checkpoint import _atomic_dir

    def fill(tmp: Path) -> None:
        judge.backbone.save_pretrained(tmp / "backbone")
        judge.tokenizer.save_pretrained(tmp / "backbone")
        save_file({"head.weight": judge.head.weight.detach().float().cpu().contiguous(),
                   "head.bias": judge.head.bias.detach().float().cpu().contiguous()},
                  tmp / "judge_head.safetensors")
        meta = {"kind": KIND, "format_version": FORMAT_VERSION, **asdict(judge.config), **(extra or {})}
        (tmp / "judge_config.json").write_text(json.dumps(meta, indent=2))

    return _atomic_dir(path, fill)


def load_judge(path: str | Path, device="cpu") -> Judge:
    """Load a judge directory written by :func:`save_judge`."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    from transformers import AutoModel

    from ...models.loading import load_tokenizer

    path = Path(path).expanduser()
    cfg_file = path / "judge_config.json"
    if not cfg_file.is_file():
        raise PathpruneError(f"{path} is not a judge checkpoint (no judge_config.json)")
    try:
        raw = json.loads(cfg_file.read_text())
    except json.JSONDecodeError as err:
        raise PathpruneError(f"{cfg_file} is not valid JSON ({err.msg})") from None
    if raw.get("kind") != KIND or raw.get("format_version") != FORMAT_VERSION:
        raise PathpruneError(f"{path}: not a pathprune judge of format {FORMAT_VERSION} "
                             f"(kind {raw.get('kind')!r}, format {raw.get('format_version')!r})")
    config = JudgeConfig(**{f.name: raw[f.name] for f in fields(JudgeConfig) if f.name in raw})
    backbone_dir = path / "backbone"
    if not (backbone_dir / "config.json").is_file():
        raise PathpruneError(f"{path}: the judge's backbone/ directory is missing or has no config.json")
    try:
        backbone, info = AutoModel.from_pretrained(str(backbone_dir), dtype=torch.float32, output_loading_info=True)
    except (OSError, ValueError, SafetensorError) as err:
        raise PathpruneError(f"{backbone_dir}: cannot load the judge's backbone ({str(err).splitlines()[0]})") from None
    if info.get("missing_keys") or info.get("mismatched_keys"):
        bad = sorted(info.get("missing_keys") or []) or [str(k) for k in info["mismatched_keys"]]
        raise PathpruneError(f"{backbone_dir}: backbone weights do not match its config.json ({bad[0]} ...)")
    tokenizer = load_tokenizer(backbone_dir)
    if len(tokenizer) > backbone.config.vocab_size:
        raise PathpruneError(f"{path}: the tokenizer ({len(tokenizer)} tokens) does not fit the backbone's "
                             f"vocabulary ({backbone.config.vocab_size})")
    try:
        tensors = load_file(path / "judge_head.safetensors")
    except (SafetensorError, OSError) as err:
        raise PathpruneError(f"{path}/judge_head.safetensors: unreadable ({str(err).splitlines()[0]})") from None
    judge = Judge(backbone, tokenizer, config)
    hidden = backbone.config.hidden_size
    if tuple(tensors.get("head.weight", torch.empty(0)).shape) != (1, hidden) or \
            tuple(tensors.get("head.bias", torch.empty(0)).shape) != (1,):
        raise PathpruneError(f"{path}: the head does not fit the backbone (expected head.weight (1, {hidden}) "
                             f"and head.bias (1,))")
    with torch.no_grad():
        judge.head.weight.copy_(tensors["head.weight"])
        judge.head.bias.copy_(tensors["head.bias"])
    return judge.to(device).eval()


def train_judge(judge: Judge, label_tokenizer, train: list[dict], val: list[dict], cfg: TrainJudgeConfig,
                out: str | Path, progress=None) -> dict:
    """Fine-tune the whole judge (backbone and head) on Monte-Carlo labels; save the best epoch to ``out``.

    ``label_tokenizer`` decodes the records' token ids (the generator's tokenizer). Returns
    ``{"history": [...], "best": {...}, "seconds": ...}``.
    """
    from accelerate import Accelerator

    from ...stop.train import label_metrics

    if not train or not val:
        raise PathpruneError("judge training needs training and validation records")
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    torch.manual_seed(cfg.seed)
    judge = judge.to(accelerator.device).train()
    opt = accelerator.prepare(torch.optim.AdamW(judge.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay))
    train_ids = judge.encode([record_text(r, label_tokenizer) for r in train])
    val_ids = judge.encode([record_text(r, label_tokenizer) for r in val])
    target = [float(r["outcomes"][0]) if cfg.hard_labels else r["soft_label"] for r in train]
    rng = random.Random(cfg.seed)
    history, best, t0 = [], None, time.perf_counter()
    extra = {"train": asdict(cfg), "train_records": len(train), "val_records": len(val)}
    for epoch in range(1, cfg.epochs + 1):
        judge.train()
        order = list(range(len(train)))
        rng.shuffle(order)
        total = 0.0
        for start in range(0, len(order), cfg.batch_size):
            idx = order[start:start + cfg.batch_size]
            logits = judge.logits_ids([train_ids[i] for i in idx], grad=True)
            y = torch.tensor([target[i] for i in idx], device=logits.device)
            loss = nn.functional.binary_cross_entropy_with_logits(logits, y)
            accelerator.backward(loss)
            opt.step()
            opt.zero_grad(set_to_none=True)
            total += loss.item() * len(idx)
        judge.eval()
        probs = judge.score_ids(val_ids).tolist()
        metrics = {"epoch": epoch, "train_loss": total / len(train), **label_metrics(probs, val),
                   "seconds": round(time.perf_counter() - t0, 1)}
        history.append(metrics)
        if best is None or metrics["mse"] < best["mse"]:
            best = metrics
            if accelerator.is_main_process:
                save_judge(judge, out, {"metrics": metrics, **extra})
        if progress:
            progress(epoch, metrics)
    if accelerator.is_main_process:  # the saved (best) epoch's config also records the whole run
        cfg_file = Path(out) / "judge_config.json"
        meta = json.loads(cfg_file.read_text()) | {"history": history}
        tmp = cfg_file.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(meta, indent=2))
        os.replace(tmp, cfg_file)
    return {"history": history, "best": best, "seconds": round(time.perf_counter() - t0, 1)}
