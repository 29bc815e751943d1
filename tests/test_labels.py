"""Monte-Carlo labelling end to end, its resumption after a kill, and STOP training on its output."""

import json
import signal
import subprocess
import sys
import time

import pytest

from pathprune.errors import PathpruneError
from pathprune.models import load_model
from pathprune.stop import StopConfig, load_stop
from pathprune.stop.labels import LabelConfig, label_problem, read_labels
from pathprune.stop.train import TrainStopConfig, label_metrics, train_stop
from pathprune.testbed.problems import generate

ARGS = ["--levels", "7,8", "--per-level", "3", "--n-filter", "8", "--k", "4", "--prefix-tokens", "12,20"]


def _run(out, *extra):
    return subprocess.Popen([sys.executable, "-m", "pathprune", "label", "--out", str(out), *ARGS, *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _records(path):
    return sorted(json.dumps(json.loads(line), sort_keys=True) for line in path.read_text().splitlines())


def test_label_problem_records():
    model, tok = load_model("testbed")
    problem = generate("chain", 9, 1, "train")[0]
    cfg = LabelConfig(n_filter=8, k=6, prefix_tokens=(12, 20), min_correct=0.0, max_correct=1.0)
    unit, records = label_problem(model, tok, problem, cfg, {"seed": 0})
    assert unit["kept"] and unit["prefixes"] == len(records) > 0
    prompt = tok(problem.prompt).input_ids
    for r in records:
        assert r["prefix_token_ids"][: len(prompt)] == prompt and r["prompt_len"] == len(prompt)
        assert len(r["prefix_token_ids"]) == len(prompt) + r["prefix_len"] and r["prefix_len"] in (12, 20)
        assert len(r["outcomes"]) == 6 and r["soft_label"] == sum(r["outcomes"]) / 6
    assert len({tuple(r["prefix_token_ids"]) for r in records}) == len(records)  # deduplicated
    strict = LabelConfig(n_filter=8, k=2, min_correct=1.0, max_correct=1.0)
    assert label_problem(model, tok, problem, strict, {})[1] == [] or unit["n_correct"] == 8


def test_labelling_survives_a_kill(tmp_path):
    reference = _run(tmp_path / "ref")
    assert reference.wait(timeout=300) == 0, reference.stderr.read()
    proc = _run(tmp_path / "killed")
    units = tmp_path / "killed" / "problems.jsonl"
    deadline = time.time() + 200
    while time.time() < deadline and (not units.exists() or len(units.read_text().splitlines()) < 2):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(units.read_text().splitlines())
    assert 2 <= done < 10, "the kill should land mid-run"
    again = _run(tmp_path / "killed")
    assert again.wait(timeout=300) == 0, again.stderr.read()
    assert _records(tmp_path / "killed" / "labels.jsonl") == _records(tmp_path / "ref" / "labels.jsonl")
    assert _records(units) == _records(tmp_path / "ref" / "problems.jsonl")


def test_read_official_format_and_errors(tmp_path):
    f = tmp_path / "official.jsonl"
    f.write_text(json.dumps({"prefix_token_ids": [1, 2, 3], "Soft_label": 0.25}) + "\n")
    (rec,) = read_labels(f)
    assert rec["soft_label"] == 0.25 and rec["outcomes"] == [0]
    f.write_text(json.dumps({"prefix_token_ids": [1, 2, 3]}) + "\n")
    with pytest.raises(PathpruneError, match="line 1 needs prefix_token_ids and soft_label"):
        read_labels(f)


def test_training_saves_the_best_epoch(tmp_path):
    model, tok = load_model("testbed")
    cfg = LabelConfig(n_filter=8, k=4, prefix_tokens=(12, 20), min_correct=0.0, max_correct=1.0)
    recs = [r for p in generate("chain", 9, 6, "train") for r in label_problem(model, tok, p, cfg, {})[1]]
    train, val = recs[: len(recs) * 2 // 3], recs[len(recs) * 2 // 3:]
    report = train_stop(model, tok, train, val, StopConfig(n_stop=2, rank=4), TrainStopConfig(epochs=2, batch_size=8),
                        tmp_path / "stop")
    assert len(report["history"]) == 2 and report["best"]["mse"] == min(h["mse"] for h in report["history"])
    fresh, _ = load_model("testbed")
    loaded = load_stop(fresh, tmp_path / "stop")
    probs = loaded.score_ids([r["prefix_token_ids"] for r in val], tok.pad_token_id).tolist()
    assert label_metrics(probs, val)["mse"] == pytest.approx(report["best"]["mse"], abs=1e-6)
    # the critique adapter really trained (LoRA B starts at zero)
    lora_b = [p for n, p in loaded.peft.named_parameters() if "lora_B" in n]
    assert lora_b and all(p.abs().sum() > 0 for p in lora_b)
