"""Train a STOP module on Monte-Carlo labels with accelerate (one CPU or many GPUs, same code).

Loss: soft binary cross-entropy between sigmoid(head) and the Monte-Carlo
label (the paper's Eq. 4); ``hard_labels`` uses one rollout's outcome instead
(K = 1, the paper's ablation). Each epoch is validated on held-out problems
(MSE and calibration against soft labels, Brier and AUROC against the
binarised labels, and the within-problem AUROC that pruning needs); the epoch
with the lowest validation MSE is saved (the official code's criterion).
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass

import torch

from ..evaluation.metrics import auroc, brier, ece, mse, within_problem_auroc
from .checkpoint import save_stop
from .config import StopConfig
from .module import StopModule


@dataclass
class TrainStopConfig:
    epochs: int = 10
    lr: float = 1e-2
    batch_size: int = 32
    weight_decay: float = 0.0
    hard_labels: bool = False
    seed: int = 0


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
    module = StopModule(model, stop_cfg, stop_token_id(tokenizer)).to(accelerator.device)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    opt = torch.optim.AdamW(module.trainable_parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    opt = accelerator.prepare(opt)
    target = [float(r["outcomes"][0]) if cfg.hard_labels else r["soft_label"] for r in train]
    rng = random.Random(cfg.seed)
    val_ids = [r["prefix_token_ids"] for r in val]
    history, best, t0 = [], None, time.perf_counter()
    for epoch in range(1, cfg.epochs + 1):
        order = list(range(len(train)))
        rng.shuffle(order)
        total = 0.0
        for start in range(0, len(order), cfg.batch_size):
            idx = order[start:start + cfg.batch_size]
            logits = module.logits_ids([train[i]["prefix_token_ids"] for i in idx], pad, grad=True)
            y = torch.tensor([target[i] for i in idx], device=logits.device)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
            accelerator.backward(loss)
            opt.step()
            opt.zero_grad(set_to_none=True)
            total += loss.item() * len(idx)
        probs = module.score_ids(val_ids, pad).tolist()
        metrics = {"epoch": epoch, "train_loss": total / len(train), **label_metrics(probs, val),
                   "seconds": round(time.perf_counter() - t0, 1)}
        history.append(metrics)
        if best is None or metrics["mse"] < best["mse"]:
            best = metrics
            if accelerator.is_main_process:
                save_stop(module, out, {"metrics": metrics, "train": asdict(cfg), "train_records": len(train)})
        if progress:
            progress(epoch, metrics)
    return {"history": history, "best": best}
