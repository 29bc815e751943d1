"""Train the testbed model on a noisy teacher's chains of thought.

``pathprune testbed train`` reproduces the shipped checkpoint: data are
generated on the fly from fixed seeds (train split only), the loss covers the
completion (strategy word, steps, answer, ``<eos>``), not the prompt.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..io.atomic import atomic_dir
from .families import FAMILIES, NoiseConfig
from .model import new_testbed_model
from .problems import split_of
from .tokenizer import VOCAB, build_tokenizer

_IDS = {w: i for i, w in enumerate(VOCAB)}


@dataclass
class PretrainConfig:
    """Pre-training of the testbed model itself (the scorers trained on its labels: ``stop.scorer_training.TrainConfig``)."""

    steps: int = 2400
    batch_size: int = 48
    lr: float = 2e-3
    min_lr_ratio: float = 0.05
    warmup: int = 200
    weight_decay: float = 0.01
    seed: int = 0
    threads: int = 2
    eval_every: int = 500
    noise: NoiseConfig = field(default_factory=NoiseConfig)


def teacher_example(rng: random.Random, noise: NoiseConfig) -> tuple[list[int], int]:
    """One train-split problem with a teacher trace: (token ids, prompt length)."""
    while True:
        fam = FAMILIES[rng.choice(sorted(FAMILIES))]
        spec = fam.make(rng, rng.randint(1, fam.max_difficulty))
        prompt = fam.prompt(spec)
        if split_of(" ".join(prompt)) == "train":
            break
    words = ["<bos>", *prompt, *fam.teacher(spec, rng, noise), "<eos>"]
    return [_IDS[w] for w in words], len(prompt) + 1


def make_batch(rng: random.Random, size: int, noise: NoiseConfig) -> dict[str, torch.Tensor]:
    """Right-padded batch; labels are -100 on the prompt and on padding."""
    examples = [teacher_example(rng, noise) for _ in range(size)]
    width = max(len(ids) for ids, _ in examples)
    ids = torch.full((size, width), _IDS["<pad>"])
    labels = torch.full((size, width), -100)
    mask = torch.zeros((size, width), dtype=torch.long)
    for row, (seq, n_prompt) in enumerate(examples):
        ids[row, : len(seq)] = torch.tensor(seq)
        labels[row, n_prompt : len(seq)] = torch.tensor(seq[n_prompt:])
        mask[row, : len(seq)] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def _lr_at(step: int, cfg: PretrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def train(out_dir: str | Path, cfg: PretrainConfig, progress=None) -> dict:
    """Train from scratch and save a Hugging Face checkpoint to ``out_dir``.

    ``progress`` is an optional callable ``(step, loss)`` for progress bars.
    Returns the training record also written to ``training.json``.
    """
    torch.set_num_threads(cfg.threads)
    model = new_testbed_model(cfg.seed)
    model.config._attn_implementation = "eager"  # ~15 % faster than sdpa for training at this size on CPU
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.98), weight_decay=cfg.weight_decay)
    rng = random.Random(cfg.seed)
    eval_batch = make_batch(random.Random(cfg.seed + 10_000), 256, cfg.noise)
    history, t0, running = [], time.perf_counter(), None
    for step in range(cfg.steps):
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, cfg)
        loss = model(**make_batch(rng, cfg.batch_size, cfg.noise)).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if progress:
            progress(step + 1, running)
        if (step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps:
            model.eval()
            with torch.no_grad():
                val = model(**eval_batch).loss.item()
            model.train()
            history.append({"step": step + 1, "train_loss": round(running, 4), "val_loss": round(val, 4),
                            "seconds": round(time.perf_counter() - t0, 1)})
    model.eval()
    model.config._attn_implementation = "sdpa"
    record = {"config": asdict(cfg), "history": history, "train_seconds": round(time.perf_counter() - t0, 1),
              "torch": torch.__version__, "parameters": sum(p.numel() for p in model.parameters())}
    with atomic_dir(out_dir) as tmp:  # never a half checkpoint
        model.save_pretrained(tmp)
        build_tokenizer().save_pretrained(tmp)
        (tmp / "training.json").write_text(json.dumps(record, indent=2))
    return record
