"""Train a STOP module on Monte-Carlo labels with accelerate (one CPU or many GPUs, same code).

Loss: soft binary cross-entropy between sigmoid(head) and the Monte-Carlo
label (the paper's Eq. 4); ``hard_labels`` uses one rollout's outcome instead
(K = 1, the paper's ablation).

Our extension (not in the paper), ``loss="bce+listwise"`` or ``"bce+pairwise"``:
top-k pruning ranks the paths *of one problem*, and a model trained on the
pooled BCE alone can score well by learning problem difficulty (the
"within-problem trap", testbed-notes.md). These losses add, with weight
``rank_weight``, a term that compares prefixes of the same problem cut at the
same point; minibatches are then built from whole (problem_id, cut) groups.

* listwise: KL(t || softmax(logits)) per group, t = soft labels / their sum
  (ListNet with the labels as target distribution);
* pairwise: sum over pairs with y_i > y_j of (y_i - y_j) * log(1 + exp(-(z_i - z_j))),
  divided by the pair weights' sum (RankNet weighted by the label gap).

Groups whose labels are all equal carry no ranking information and add
nothing; with ``hard_labels`` the term ranks by the one-rollout labels. Each epoch is validated on held-out problems (MSE and calibration
against soft labels, Brier and AUROC against the binarised labels, and the
within-problem AUROC that pruning needs); the saved epoch is the one with the
lowest validation MSE (``select="mse"``, the official code's criterion) or the
highest within-problem AUROC (``select="within_auroc"``).
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..evaluation.metrics import auroc, brier, ece, mse, within_problem_auroc
from .checkpoint import save_stop
from .config import StopConfig
from .evaluate import prefix_logprobs
from .module import StopModule, logprob_features


@dataclass
class TrainConfig:
    """Optimisation settings shared by the signals trained on Monte-Carlo labels (STOP, the judge)."""

    epochs: int = 10
    lr: float = 2e-3
    batch_size: int = 32
    weight_decay: float = 0.01
    hard_labels: bool = False
    """Train on the first rollout's outcome (K = 1) instead of the soft label (the paper's ablation)."""
    seed: int = 0


@dataclass
class TrainStopConfig(TrainConfig):
    loss: str = "bce"
    """"bce" (the paper's soft BCE), "bce+listwise" or "bce+pairwise" (our within-problem extension)."""
    rank_weight: float = 1.0
    """Weight of the listwise / pairwise term beside the BCE."""
    max_grad_norm: float | None = None
    """Clip the gradient norm of the trainable parameters (None: no clipping)."""
    select: str = "mse"
    """Epoch kept: lowest validation MSE ("mse", official) or highest within-problem AUROC ("within_auroc")."""

    def __post_init__(self) -> None:
        from ..errors import PathpruneError

        if self.loss not in LOSSES:
            raise PathpruneError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}",
                                 parameter="loss", value=self.loss)
        if self.select not in SELECT:
            raise PathpruneError(f"select must be one of {', '.join(SELECT)}, got {self.select!r}",
                                 parameter="select", value=self.select)


LOSSES = ("bce", "bce+listwise", "bce+pairwise")
SELECT = ("mse", "within_auroc")


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


def stop_token_id(tokenizer) -> int | None:
    return tokenizer.convert_tokens_to_ids("[STOP]") if "[STOP]" in tokenizer.get_vocab() else None


def train_stop(model, tokenizer, train: list[dict], val: list[dict], stop_cfg: StopConfig,
               cfg: TrainStopConfig, out, progress=None) -> dict:
    """Train and save the best epoch to ``out``; returns {"history": [...], "best": {...}}."""
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    torch.manual_seed(cfg.seed)
    train_lp = val_lp = None
    if stop_cfg.head_features:  # constant inputs (frozen backbone): computed once, standardised on train
        train_lp, val_lp = prefix_logprobs(model, tokenizer, train), prefix_logprobs(model, tokenizer, val)
        raw = logprob_features(train_lp, stop_cfg.head_features)
        stop_cfg.feature_mean = raw.mean(0).tolist()
        stop_cfg.feature_std = raw.std(0).clamp(min=1e-6).tolist()
    module = StopModule(model, stop_cfg, stop_token_id(tokenizer)).to(accelerator.device)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    opt = torch.optim.AdamW(module.trainable_parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    opt = accelerator.prepare(opt)
    target = [float(r["outcomes"][0]) if cfg.hard_labels else r["soft_label"] for r in train]
    rng = random.Random(cfg.seed)
    val_ids = [r["prefix_token_ids"] for r in val]
    history, best, t0 = [], None, time.perf_counter()
    ranking = {"bce+listwise": listwise_loss, "bce+pairwise": pairwise_loss}.get(cfg.loss)
    keys = [group_key(r) for r in train]
    for epoch in range(1, cfg.epochs + 1):
        if ranking is None:
            order = list(range(len(train)))
            rng.shuffle(order)
            batches = [order[s:s + cfg.batch_size] for s in range(0, len(order), cfg.batch_size)]
        else:
            batches = grouped_batches(train, cfg.batch_size, rng)
        total = 0.0
        for idx in batches:
            logits = module.logits_ids([train[i]["prefix_token_ids"] for i in idx], pad, grad=True,
                                       logprobs=None if train_lp is None else [train_lp[i] for i in idx])
            y = torch.tensor([target[i] for i in idx], device=logits.device)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
            if ranking is not None:
                loss = loss + cfg.rank_weight * ranking(logits, y, [keys[i] for i in idx])
            accelerator.backward(loss)
            if cfg.max_grad_norm:
                accelerator.clip_grad_norm_(module.trainable_parameters(), cfg.max_grad_norm)
            opt.step()
            opt.zero_grad(set_to_none=True)
            total += loss.item() * len(idx)
        probs = module.score_ids(val_ids, pad, logprobs=val_lp).tolist()
        metrics = {"epoch": epoch, "train_loss": total / len(train), **label_metrics(probs, val),
                   "seconds": round(time.perf_counter() - t0, 1)}
        history.append(metrics)
        if best is None or _better(metrics, best, cfg.select):
            best = metrics
            if accelerator.is_main_process:
                save_stop(module, out, {"metrics": metrics, "train": asdict(cfg), "train_records": len(train)})
        if progress:
            progress(epoch, metrics)
    if accelerator.is_main_process:  # every epoch's validation beside the kept one, for the record
        import json

        from ..io.runlog import write_json_atomic

        cfg_file = Path(out) / "stop_config.json"
        write_json_atomic(cfg_file, {**json.loads(cfg_file.read_text()), "history": history})
    return {"history": history, "best": best}


def _better(metrics: dict, best: dict, select: str) -> bool:
    if select == "within_auroc":
        return (metrics["within_auroc"] or 0.0) > (best["within_auroc"] or 0.0)
    return metrics["mse"] < best["mse"]
