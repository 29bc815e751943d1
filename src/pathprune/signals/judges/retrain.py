"""The paper's "Type II-retrain" control: a separate judge model trained on STOP's Monte-Carlo labels.

The judge is a *separate* copy of a transformer (for the testbed: a fresh load of the
testbed model, its own weights, fully fine-tuned) with a linear classification head on the
final hidden state of the last token (``pooling="last"``) or the mean over tokens
(``"mean"``): p(success) = sigmoid(w . h + b). Its input is *text*: the decoded question and
prefix, re-tokenized by the judge's own tokenizer (``question + "\\n" + prefix``), so it sees
what an external verifier sees and nothing of the generator's internal state, and every
prefix is re-encoded from scratch (the cost the signal charges).

Training (``pathprune train --judge``) uses the same records as STOP (``read_labels``) and the
same loop (:func:`pathprune.stop.scorer_training.fit`: soft binary cross-entropy against the Monte-Carlo
label, validation on held-out problems every epoch, the epoch with the lowest validation MSE kept).

Checkpoint directory (written atomically)::

    judge_config.json        JudgeConfig, kind and format version (checked on load)
    training.json            how it was trained: settings, record counts, validation metrics (optional)
    judge_head.safetensors   head.weight (1, H), head.bias (1,)
    backbone/                a Hugging Face base model (config.json, model.safetensors) + its tokenizer
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from ...errors import PathpruneError
from ...io.atomic import atomic_dir
from ...stop.config import TRAINING_FILE, check_format, config_fields, model_name
from ...stop.scorer_training import Trainee, TrainConfig, fit

FORMAT_VERSION = 1
KIND = "pathprune-judge"


@dataclass
class JudgeConfig:
    pooling: str = "last"
    """``last``: the last token's final hidden state; ``mean``: the mean over the input's tokens."""
    max_length: int | None = None
    """Longest input in judge tokens (default: the backbone's context); longer inputs keep their end."""
    base_model: str = ""
    """What the backbone was initialised from, by name (provenance only; never a machine path)."""
    labels: dict = field(default_factory=dict)
    """Provenance of the training labels (the generator that produced them)."""

    def __post_init__(self) -> None:
        if self.pooling not in ("last", "mean"):
            raise PathpruneError(f"judge pooling must be 'last' or 'mean', got {self.pooling!r}")
        if self.max_length is not None and (isinstance(self.max_length, bool) or not isinstance(self.max_length, int)
                                            or self.max_length < 1):
            raise PathpruneError(f"judge max_length must be an integer >= 1 or None, got {self.max_length!r}")
        if not isinstance(self.labels, dict):
            raise PathpruneError(f"judge labels must be a mapping (the labels' provenance), got {self.labels!r}")
        self.base_model = model_name(self.base_model) if self.base_model else ""


def judge_train_config(**settings) -> TrainConfig:
    """The judge's training defaults: it fine-tunes a whole backbone, so fewer epochs, a gentler learning
    rate and no weight decay (STOP's defaults otherwise); ``settings`` override them."""
    return TrainConfig(**{"epochs": 8, "lr": 1e-3, "weight_decay": 0.0, **settings})


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
        config.base_model = config.base_model or model_name(spec)
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
    """Write ``judge`` to the directory ``path`` (atomically: never half-written); ``extra``, how it was
    trained, goes to ``training.json`` beside the config."""
    from safetensors.torch import save_file

    with atomic_dir(path) as tmp:
        judge.backbone.save_pretrained(tmp / "backbone")
        judge.tokenizer.save_pretrained(tmp / "backbone")
        save_file({"head.weight": judge.head.weight.detach().float().cpu().contiguous(),
                   "head.bias": judge.head.bias.detach().float().cpu().contiguous()},
                  tmp / "judge_head.safetensors")
        meta = {"kind": KIND, "format_version": FORMAT_VERSION, **asdict(judge.config)}
        (tmp / "judge_config.json").write_text(json.dumps(meta, indent=2))
        if extra:
            (tmp / TRAINING_FILE).write_text(json.dumps(extra, indent=2))
    return Path(path)


def check_judge(path: str | Path) -> JudgeConfig:
    """Check a judge directory as a whole without loading it: its config, the backbone's config.json and
    weight files (safetensors headers), and the head's tensors against the backbone's hidden size."""
    from ...io.tensors import safetensors_files, safetensors_shapes

    path = Path(path).expanduser()
    if not path.is_dir():
        raise PathpruneError(f"judge: checkpoint directory not found: {path}")
    cfg_file = path / "judge_config.json"
    if not cfg_file.is_file():
        raise PathpruneError(f"{path} is not a judge checkpoint (no judge_config.json)")
    try:
        raw = json.loads(cfg_file.read_text())
    except json.JSONDecodeError as err:
        raise PathpruneError(f"{cfg_file} is not valid JSON ({err.msg})") from None
    if not isinstance(raw, dict) or raw.get("kind") != KIND:
        kind = raw.get("kind") if isinstance(raw, dict) else None
        raise PathpruneError(f"{cfg_file}: not a pathprune judge (kind {kind!r}, expected {KIND!r})")
    check_format(raw, cfg_file, FORMAT_VERSION)
    try:
        config = JudgeConfig(**config_fields(JudgeConfig, raw, cfg_file, ignore=("kind", "format_version")))
    except (PathpruneError, TypeError) as err:
        raise PathpruneError(str(err) if str(err).startswith(str(cfg_file)) else f"{cfg_file}: {err}") from None
    backbone_dir = path / "backbone"
    if not (backbone_dir / "config.json").is_file():
        raise PathpruneError(f"{path}: the judge's backbone/ directory is missing or has no config.json")
    try:
        hidden = json.loads((backbone_dir / "config.json").read_text()).get("hidden_size")
    except (json.JSONDecodeError, AttributeError):
        raise PathpruneError(f"{backbone_dir / 'config.json'} is not a JSON object") from None
    for file in safetensors_files(backbone_dir):
        safetensors_shapes(file)
    head = path / "judge_head.safetensors"
    shapes = safetensors_shapes(head)
    if isinstance(hidden, int) and (shapes.get("head.weight") != (1, hidden) or shapes.get("head.bias") != (1,)):
        raise PathpruneError(f"{head}: the head does not fit the backbone (expected head.weight (1, {hidden}) "
                             f"and head.bias (1,))")
    return config


def load_judge(path: str | Path, device="cpu") -> Judge:
    """Load a judge directory written by :func:`save_judge` (checked whole first: :func:`check_judge`)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    from transformers import AutoModel

    from ...models.loading import load_tokenizer

    path = Path(path).expanduser()
    config = check_judge(path)
    backbone_dir = path / "backbone"
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


def train_judge(judge: Judge, label_tokenizer, train: list[dict], val: list[dict], cfg: TrainConfig,
                out: str | Path, progress=None) -> dict:
    """Fine-tune the whole judge (backbone and head) on Monte-Carlo labels; save the best epoch to ``out``.

    ``label_tokenizer`` decodes the records' token ids (the generator's tokenizer); ``cfg`` usually
    from :func:`judge_train_config`. Returns ``{"history": [...], "best": {...}, "seconds": ...}``.
    """

    def build(device) -> Trainee:
        nonlocal judge
        judge = judge.to(device).train()
        train_ids = judge.encode([record_text(r, label_tokenizer) for r in train])
        val_ids = judge.encode([record_text(r, label_tokenizer) for r in val])

        def logits(idx: list[int]) -> torch.Tensor:
            return judge.train().logits_ids([train_ids[i] for i in idx], grad=True)

        return Trainee(parameters=list(judge.parameters()), logits=logits,
                       val_probs=lambda: judge.eval().score_ids(val_ids).tolist(),
                       save=lambda record: save_judge(judge, out, record))

    return fit(build, train, val, cfg, out, progress)
