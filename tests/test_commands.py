"""Every ``pathprune`` command once end to end through the installed console script, on tiny inputs, so that a
wiring error in any command (a default that is not a value, an option that never reaches the library) fails
here. Commands with their own console-script tests elsewhere: demo (test_demo), run (test_run_cli), eval
(test_eval, test_run_cli), serve (test_serving), models list, testbed stats and sample (test_cli)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import cli, model_cache


def _ok(proc):
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_signals_lists_every_type():
    out = _ok(cli("signals")).stdout
    assert all(name in out for name in ("stop", "mean_logprob", "jaccard", "random", "oracle"))


def test_label_train_and_run_with_the_trained_checkpoint(tmp_path):
    """label → train → run --signal stop:DIR: the STOP workflow of docs/stop.md in miniature."""
    labels, ckpt = tmp_path / "labels", tmp_path / "ckpt"
    _ok(cli("label", "--out", str(labels), "--levels", "6", "--per-level", "1", "--n", "4", "--min-correct", "0",
            "--max-correct", "1", "--prefix-tokens", "8,12", "--k", "2", "--max-new-tokens", "60", timeout=300))
    recs = [json.loads(x) for x in (labels / "labels.jsonl").read_text().splitlines()]
    assert recs and {r["prefix_len"] for r in recs} <= {8, 12} and all(len(r["outcomes"]) == 2 for r in recs)
    proc = _ok(cli("train", "--labels", str(labels), "--val-labels", str(labels), "--out", str(ckpt),
                   "--epochs", "1", "--min-steps", "0", "--batch-size", "8", "--stop-tokens", "2", "--rank", "4",
                   timeout=300))  # --min-steps 0: one step (the default recipe runs >= 300, 30 s here)
    assert f"saved {ckpt}: epoch 1," in proc.stdout  # the one epoch asked for
    assert (ckpt / "adapter" / "adapter_model.safetensors").is_file() or any(ckpt.rglob("*.safetensors"))
    run = tmp_path / "run"
    _ok(cli("run", "--out", str(run), "--levels", "6", "--per-level", "1", "--n", "4", "--schedule", "8:2",
            "--signal", f"stop:{ckpt}", "--max-new-tokens", "60", timeout=300))
    rows = [json.loads(x) for x in (run / "paths.jsonl").read_text().splitlines()]
    assert len(rows) == 8 and sum(r["kept"] for r in rows) == 4  # 2 problems × 4 paths, 2 kept each


def test_report_rebuilds_an_evaluation(tmp_path):
    run = tmp_path / "eval"
    _ok(cli("eval", "--out", str(run), "--levels", "6", "--per-level", "1", "--n", "4", "--prefix", "8",
            "--keep", "2", "--signals", "random,mean_logprob", "--max-new-tokens", "60", timeout=300))
    first = (run / "report.md").read_text()
    (run / "report.md").unlink()
    proc = _ok(cli("report", str(run), timeout=300))
    assert (run / "report.md").read_text() == first
    assert "mean_logprob" in proc.stdout and "N=4 → k=2 at L=8 tokens (2 problems" in proc.stdout


def test_law_recommend_table_and_fit(tmp_path):
    from test_law import synthetic, write_points

    out = _ok(cli("law", "recommend", "--budget", "158k", "--prefix", "2048", "--task-length", "8650",
                  "--paths", "64")).stdout
    assert "9.63" in out
    assert "7.42" in _ok(cli("law", "table", "--task-length", "8650", "--prefixes", "512,2560",
                             "--budgets", "140k,300k")).stdout
    points = write_points(tmp_path / "points.jsonl", synthetic(noise=0.1, seed=2))
    _ok(cli("law", "fit", str(points), "--out", str(tmp_path / "law.json")))
    assert json.loads((tmp_path / "law.json").read_text())["n_points"] == 36


def test_rl_tiny(tmp_path):
    out = tmp_path / "rl"
    _ok(cli("rl", "--out", str(out), "--conditions", "none:2,drop:4:2:mean_logprob", "--seeds", "0", "--steps", "1",
            "--prompts-per-step", "2", "--eval-per-level", "1", "--eval-paths", "2", "--eval-every", "1",
            "--jobs", "1", timeout=600))
    rows = {r["condition"] for r in json.loads((out / "summary.json").read_text())["rows"]}
    assert rows == {"none:2", "drop:4:2:mean_logprob"}


def test_testbed_train_a_few_steps(tmp_path):
    out = tmp_path / "tb"
    proc = _ok(cli("testbed", "train", "--out", str(out), "--steps", "2", "--batch-size", "4", timeout=300))
    assert f"saved {out}" in proc.stdout and (out / "model.safetensors").is_file()


@pytest.mark.slow
def test_models_prepare_and_train_reasoner(tmp_path, prepared_cache):
    """prepare answers with the model's folder in the cache it is told (converting and merging offline into an
    empty cache: tests/test_reasoner_model.py); train-reasoner runs one SFT step on it."""
    with model_cache(prepared_cache[0]) as folder:  # the commands inherit the environment
        path = _ok(cli("models", "prepare", "smollm2-135m", timeout=600)).stdout.strip().splitlines()[-1]
        assert folder in Path(path).parents and (Path(path) / "model.safetensors").is_file()
        out = tmp_path / "reasoner"
        proc = _ok(cli("models", "train-reasoner", "--out", str(out), "--steps", "1", "--batch-size", "1", "--levels",
                       "1", "--per-level", "2", "--threads", "2", timeout=600))
    assert (out / "adapter" / "adapter_model.safetensors").is_file(), proc.stdout
