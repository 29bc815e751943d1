"""The one training loop for scorers trained on Monte-Carlo labels: STOP (:mod:`.train`) and the
Type II-retrain judge (:mod:`pathprune.signals.judges.retrain`).

accelerate (one CPU or many GPUs, same code), AdamW, soft binary cross-entropy between
sigmoid(logit) and the Monte-Carlo label (the paper's Eq. 4); ``hard_labels`` uses one rollout's
outcome instead (K = 1, the paper's ablation).

Our extension (not in the paper), ``loss="bce+listwise"`` or ``"bce+pairwise"``: top-k pruning
ranks the paths *of one problem*, and a scorer trained on the pooled BCE alone can score well by
learning problem difficulty (the "within-problem trap", testbed-notes.md). These losses add, with
weight ``rank_weight``, a term that compares prefixes of the same problem cut at the same point;
minibatches are then built from whole (problem_id, cut) groups.

* listwise: KL(t || softmax(logits)) per group, t = soft labels / their sum
  (ListNet with the labels as target distribution);
* pairwise: sum over pairs with y_i > y_j of (y_i - y_j) * log(1 + exp(-(z_i - z_j))),
  divided by the pair weights' sum (RankNet weighted by the label gap).

Groups whose labels are all equal carry no ranking information and add nothing; with
``hard_labels`` the term ranks by the one-rollout labels. Each epoch is validated on held-out
problems (MSE and calibration against soft labels, Brier and AUROC against the binarised labels,
and the within-problem AUROC that pruning needs); the saved epoch is the one with the lowest
validation MSE (``select="mse"``, the official code's criterion) or the highest within-problem
AUROC (``select="within_auroc"``).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..errors import PathpruneError
from ..io.atomic import write_json_atomic
from ..stats import auroc, brier, ece, mse, within_problem_auroc
from .config import TRAINING_FILE

LOSSES = ("bce", "bce+listwise", "bce+pairwise")
SELECT = ("mse", "within_auroc")


@dataclass
class TrainConfig:
    """Optimisation settings of every scorer trained on Monte-Carlo labels (STOP, the judge)."""

    epochs: int = 10
    lr: float = 2e-3
    batch_size: int = 32
    weight_decay: float = 0.01
    hard_labels: bool = False
    """Train on the first rollout's outcome (K = 1) instead of the soft label (the paper's ablation)."""
    label_k: int | None = None
    """Soft labels from each record's first ``label_k`` rollouts only (the label-cost study: what K
    Monte-Carlo rollouts buy); None: every rollout the record holds."""
    seed: int = 0
    loss: str = "bce"
    """"bce" (the paper's soft BCE), "bce+listwise" or "bce+pairwise" (our within-problem extension)."""
    rank_weight: float = 1.0
    """Weight of the listwise / pairwise term beside the BCE."""
    max_grad_norm: float | None = None
    """Clip the gradient norm of the trainable parameters (None: no clipping)."""
    min_steps: int = 0
    """At least this many optimiser steps: ``epochs`` is raised to ``ceil(min_steps / batches per epoch)``.
    Epochs measure nothing on their own: the paper's 15 epochs over 10k-17k prefixes are ~1,500 steps, while
    10 epochs over a few hundred prefixes are 20-80, too few for STOP to leave the constant predictor on
    SmolLM2 (docs/smollm2.md, ``benchmarks/stop_overfit.py``)."""
    warmup_steps: int = 0
    """Raise the learning rate linearly from ~0 over the first steps (then constant)."""
    select: str = "mse"
    """Epoch kept: lowest validation MSE ("mse", official) or highest within-problem AUROC ("within_auroc")."""

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "seed", "min_steps", "warmup_steps"):
            value = getattr(self, name)
            least = {"seed": None, "min_steps": 0, "warmup_steps": 0}.get(name, 1)
            if isinstance(value, bool) or not isinstance(value, int) or (least is not None and value < least):
                need = "an integer" if least is None else f"an integer >= {least}"
                raise PathpruneError(f"{name} must be {need}, got {value!r}", parameter=name, value=value)
        if self.label_k is not None and (isinstance(self.label_k, bool) or not isinstance(self.label_k, int)
                                         or self.label_k < 1):
            raise PathpruneError(f"label_k must be an integer >= 1 (None: all rollouts), got {self.label_k!r}",
                                 parameter="label_k", value=self.label_k)
        if self.hard_labels and self.label_k not in (None, 1):
            raise PathpruneError("hard_labels is the first rollout's outcome (label_k = 1); "
                                 f"it cannot be combined with label_k={self.label_k}", parameter="label_k",
                                 value=self.label_k)
        _number(self, "lr", lambda v: v > 0, "> 0")
        _number(self, "weight_decay", lambda v: v >= 0, ">= 0")
        _number(self, "rank_weight", lambda v: v >= 0, ">= 0")
        if self.max_grad_norm is not None:
            _number(self, "max_grad_norm", lambda v: v > 0, "> 0 (None: no clipping)")
        if self.loss not in LOSSES:
            raise PathpruneError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}",
                                 parameter="loss", value=self.loss)
        if self.select not in SELECT:
            raise PathpruneError(f"select must be one of {', '.join(SELECT)}, got {self.select!r}",
                                 parameter="select", value=self.select)


def _number(cfg: TrainConfig, name: str, ok, need: str) -> None:
    value = getattr(cfg, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not ok(value):
        raise PathpruneError(f"{name} must be a number {need}, got {value!r}", parameter=name, value=value)


STOP_RECIPE = TrainConfig(epochs=10, lr=1e-3, batch_size=16, max_grad_norm=1.0, min_steps=300)
"""What ``pathprune train`` runs for STOP unless told otherwise. 10 epochs at lr 2e-3, batch 32 (the earlier
default, 20-80 steps on a few hundred prefixes) left STOP at the constant predictor on SmolLM2; this recipe
memorises 64 prefixes there within its first 120 steps (32 within 60: ``tests/test_stop_learns.py``), and 300 steps leave
room for labels less separable than a memorisation target."""


def listwise_loss(logits: torch.Tensor, labels: torch.Tensor, groups: list) -> torch.Tensor:
    """Mean over informative groups of KL(labels / sum || softmax(logits)); 0 if no group has distinct labels."""
    terms = []
    for idx in _group_indices(groups):
        y = labels[idx]
        if len(idx) < 2 or (y.max() - y.min()).item() <= 1e-6:
            continue
        t = y / y.sum()
        logp = torch.log_softmax(logits[idx], 0)
        terms.append((torch.xlogy(t, t) - t * logp).sum())
    return torch.stack(terms).mean() if terms else logits.sum() * 0.0


def pairwise_loss(logits: torch.Tensor, labels: torch.Tensor, groups: list) -> torch.Tensor:
    """Label-gap-weighted logistic loss on every ordered pair of a group; mean over informative groups."""
    terms = []
    for idx in _group_indices(groups):
        y, z = labels[idx], logits[idx]
        gap = y[:, None] - y[None, :]
        w = gap.clamp(min=0)  # pairs (i, j) with y_i > y_j
        if w.sum().item() <= 1e-6:
            continue
        terms.append((w * torch.nn.functional.softplus(-(z[:, None] - z[None, :]))).sum() / w.sum())
    return torch.stack(terms).mean() if terms else logits.sum() * 0.0


RANKING = {"bce+listwise": listwise_loss, "bce+pairwise": pairwise_loss}


def _group_indices(groups: list) -> list[torch.Tensor]:
    by: dict = {}
    for i, g in enumerate(groups):
        by.setdefault(g, []).append(i)
    return [torch.tensor(v) for v in by.values()]


def group_key(record: dict):
    """Prefixes that the ranking term compares: same problem, same cut point."""
    return record["problem_id"], record.get("prefix_len", len(record["prefix_token_ids"]))


def grouped_batches(records: list[dict], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled minibatches made of whole (problem_id, cut) groups (a group larger than a batch is its own)."""
    by: dict = {}
    for i, r in enumerate(records):
        by.setdefault(group_key(r), []).append(i)
    groups = list(by.values())
    rng.shuffle(groups)
    batches, cur = [], []
    for g in groups:
        if cur and len(cur) + len(g) > batch_size:
            batches.append(cur)
            cur = []
        cur = cur + g
    if cur:
        batches.append(cur)
    return batches


def label_metrics(probs: list[float], records: list[dict]) -> dict:
    """Quality of scores against the records' Monte-Carlo labels."""
    soft = [r["soft_label"] for r in records]
    hard = [int(s >= 0.5) for s in soft]
    groups = [r["problem_id"] for r in records]
    return {"mse": mse(probs, soft), "brier": brier(probs, hard), "auroc": auroc(probs, hard),
            "within_auroc": within_problem_auroc(probs, hard, groups), "ece": ece(probs, soft)}


def better(metrics: dict, best: dict, select: str) -> bool:
    """Whether an epoch's validation ``metrics`` beat the kept epoch's under ``select``."""
    if select == "within_auroc":
        return (metrics["within_auroc"] or 0.0) > (best["within_auroc"] or 0.0)
    return metrics["mse"] < best["mse"]


@dataclass
class Trainee:
    """What the loop trains, as the scorer presents it."""

    parameters: list[torch.nn.Parameter]
    """The trainable parameters (the optimiser's, and those whose gradient norm is clipped)."""
    logits: Callable[[list[int]], torch.Tensor]
    """Logits, with gradient, of the training records at these indices."""
    val_probs: Callable[[], list[float]]
    """p(success) of every validation record, without gradient."""
    save: Callable[[dict], None]
    """Write the checkpoint (atomically) with this training record as its :data:`TRAINING_FILE`."""


def training_targets(records: list[dict], cfg: TrainConfig) -> list[float]:
    """What each record is trained towards: its soft label, or the mean of its first K rollouts' outcomes
    (K = 1 with ``hard_labels``, else ``label_k``)."""
    k = 1 if cfg.hard_labels else cfg.label_k
    if k is None:
        return [r["soft_label"] for r in records]
    short = sum(len(r["outcomes"]) < k for r in records)
    if short:
        raise PathpruneError(f"label_k={k} needs {k} rollout outcomes per record; {short} of {len(records)} "
                             "records have fewer", parameter="label_k", value=k)
    return [sum(r["outcomes"][:k]) / k for r in records]


def planned_epochs(train: list[dict], cfg: TrainConfig) -> int:
    """Epochs :func:`fit` runs on ``train``: ``cfg.epochs``, raised until ``cfg.min_steps`` optimiser steps fit."""
    if RANKING.get(cfg.loss) is None:
        per_epoch = math.ceil(len(train) / cfg.batch_size)
    else:  # whole groups per batch: the count of the first epoch's draw (it barely varies)
        per_epoch = len(grouped_batches(train, cfg.batch_size, random.Random(cfg.seed)))
    return max(cfg.epochs, math.ceil(cfg.min_steps / max(per_epoch, 1)))


def fit(build: Callable[[torch.device], Trainee], train: list[dict], val: list[dict], cfg: TrainConfig,
        out: str | Path, progress=None) -> dict:
    """Train what ``build(device)`` returns (called after seeding, so initial weights follow ``cfg.seed``)
    on ``train``, validate each epoch on ``val``, keep the best epoch in ``out``.

    Returns ``{"history": [...], "best": {...}, "seconds": ...}``; ``out``'s :data:`TRAINING_FILE`
    records the settings, record counts, the kept epoch's metrics and every epoch's.
    """
    from accelerate import Accelerator

    if not train or not val:
        raise PathpruneError("training needs training and validation records")
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    target = training_targets(train, cfg)  # before building: a label_k the records cannot serve fails at once
    torch.manual_seed(cfg.seed)
    trainee = build(accelerator.device)
    opt = accelerator.prepare(torch.optim.AdamW(trainee.parameters, lr=cfg.lr, weight_decay=cfg.weight_decay))
    warmup = cfg.warmup_steps
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / warmup) if warmup else 1.0)
    epochs = planned_epochs(train, cfg)
    rng = random.Random(cfg.seed)
    ranking = RANKING.get(cfg.loss)
    keys = [group_key(r) for r in train]
    record = {"train": asdict(cfg), "epochs_run": epochs, "train_records": len(train), "val_records": len(val)}
    history, best, t0 = [], None, time.perf_counter()
    for epoch in range(1, epochs + 1):
        if ranking is None:
            order = list(range(len(train)))
            rng.shuffle(order)
            batches = [order[s:s + cfg.batch_size] for s in range(0, len(order), cfg.batch_size)]
        else:
            batches = grouped_batches(train, cfg.batch_size, rng)
        total = 0.0
        for idx in batches:
            logits = trainee.logits(idx)
            y = torch.tensor([target[i] for i in idx], device=logits.device)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
            if ranking is not None:
                loss = loss + cfg.rank_weight * ranking(logits, y, [keys[i] for i in idx])
            accelerator.backward(loss)
            if cfg.max_grad_norm:
                accelerator.clip_grad_norm_(trainee.parameters, cfg.max_grad_norm)
            opt.step()
            schedule.step()
            opt.zero_grad(set_to_none=True)
            total += loss.item() * len(idx)
        metrics = {"epoch": epoch, "train_loss": total / len(train), **label_metrics(trainee.val_probs(), val),
                   "seconds": round(time.perf_counter() - t0, 1)}
        history.append(metrics)
        if best is None or better(metrics, best, cfg.select):
            best = metrics
            if accelerator.is_main_process:
                trainee.save({**record, "best": best, "history": list(history)})
        if progress:
            progress(epoch, metrics)
    seconds = round(time.perf_counter() - t0, 1)
    if accelerator.is_main_process:  # every epoch's validation beside the kept one, for the record
        write_json_atomic(Path(out) / TRAINING_FILE, {**record, "best": best, "history": history, "seconds": seconds})
    return {"history": history, "best": best, "seconds": seconds}
