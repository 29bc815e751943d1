"""STOP's trainer learns on real models: it memorises a few dozen labelled prefixes (issue #25).

Two distinct prefixes of the model's own paths per problem, labelled 1 and 0 (:mod:`pathprune.stop.overfit`);
training and validation are the same records. The question is whether the trainer can fit labels at all, which
the paper's 10 epochs over a few hundred prefixes (20-80 optimiser steps) could not on SmolLM2 (docs/smollm2.md).
The constant predictor's loss is ln 2 on these balanced labels.
"""

import math

import pytest
import torch

from pathprune.models import load_model
from pathprune.stop import StopConfig, load_stop
from pathprune.stop.overfit import paired_prefixes
from pathprune.stop.train import train_stop
from pathprune.stop.scorer_training import TrainConfig, planned_epochs
from pathprune.tasks.reasoner import suite
from pathprune.testbed import problems as testbed_problems


def recipe(steps: int) -> TrainConfig:
    """``pathprune train``'s defaults (lr, batch, clipping) for ``steps`` optimiser steps."""
    return TrainConfig(epochs=1, min_steps=steps, lr=1e-3, batch_size=16, max_grad_norm=1.0)


def assert_memorised(report: dict) -> None:
    shares = [h["train_loss"] / math.log(2) for h in report["history"]]
    assert min(shares) < 0.5, f"training loss never fell below half the constant predictor's: {shares}"
    assert report["best"]["auroc"] >= 0.95 and report["best"]["within_auroc"] >= 0.95, report["best"]


def test_min_steps_sets_the_epochs():
    recs = [{"problem_id": str(i), "prefix_token_ids": [1, 2], "soft_label": 0.5, "outcomes": [1]}
            for i in range(64)]
    assert planned_epochs(recs, TrainConfig(epochs=10, batch_size=16)) == 10
    assert planned_epochs(recs, TrainConfig(epochs=10, batch_size=16, min_steps=120)) == 30  # 4 batches an epoch
    assert planned_epochs(recs, TrainConfig(epochs=10, batch_size=16, min_steps=30)) == 10
    assert planned_epochs(recs, TrainConfig(epochs=1, batch_size=32, min_steps=5)) == 3


def memorise(model_name: str, problems, count: int, length: int, steps: int, out) -> None:
    torch.manual_seed(0)
    model, tok = load_model(model_name)
    recs = paired_prefixes(model, tok, problems, count, length)
    assert len(recs) == count and len({tuple(r["prefix_token_ids"]) for r in recs}) == count
    report = train_stop(model, tok, recs, recs, StopConfig(), recipe(steps), out)
    assert_memorised(report)
    # the kept epoch scores as it did in training, from the checkpoint alone
    fresh, tok = load_model(model_name)
    scores = load_stop(fresh, out).score_ids([r["prefix_token_ids"] for r in recs], tok.pad_token_id or 0)
    assert (scores[1::2] > scores[0::2]).float().mean() >= 0.95


def test_stop_memorises_64_prefixes_of_the_testbed(tmp_path):
    memorise("testbed", testbed_problems.suite("validation", 20, levels=(6, 7, 8)), 64, 16, 120, tmp_path / "stop")


@pytest.mark.slow
def test_stop_memorises_32_prefixes_of_smollm2(tmp_path):
    """60 steps, 30 epochs: loss below half the constant's from step ~42 (64 prefixes took 120 steps, ~76 to cross,
    twice the time; docs/smollm2.md)."""
    memorise("smollm2-135m-reasoner", suite("validation", n_per_level=30, levels=(3, 4, 5)), 32, 48, 60,
             tmp_path / "stop")


def test_warmup_scales_the_first_steps_learning_rate(tmp_path):
    """AdamW's first step moves each weight by about the learning rate; with a 10-step warm-up by a tenth of it."""
    from pathprune.stop.scorer_training import Trainee, fit

    recs = [{"problem_id": str(i), "prefix_token_ids": [i], "soft_label": float(i % 2), "outcomes": [i % 2]}
            for i in range(4)]

    def first_step(warmup: int) -> float:
        w = torch.nn.Parameter(torch.zeros(1))
        x = torch.tensor([1.0, -1.0, 1.0, -1.0])

        def build(_device):
            return Trainee(parameters=[w], logits=lambda idx: w * x[idx], save=lambda _r: None,
                           val_probs=lambda: torch.sigmoid(w * x).tolist())

        fit(build, recs, recs, TrainConfig(epochs=1, batch_size=4, lr=0.1, weight_decay=0.0,
                                           warmup_steps=warmup), tmp_path)
        return abs(float(w))

    assert first_step(0) == pytest.approx(0.1, rel=1e-3)
    assert first_step(10) == pytest.approx(0.01, rel=1e-3)
