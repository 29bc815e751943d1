"""Monte-Carlo labelling end to end, its resumption after a kill, and STOP training on its output."""

import json
import signal
import subprocess
import sys
import time

import pytest
import torch

from pathprune.errors import PathpruneError
from pathprune.models import load_model
from pathprune.stop import StopConfig, load_stop
from pathprune.stop.labels import LabelConfig, label_problem, read_labels
from pathprune.stop.train import train_stop
from pathprune.stop.scorer_training import TrainConfig, label_metrics
from pathprune.testbed.problems import generate
from conftest import ROOT, cli, sorted_json_lines

ARGS = ["--levels", "7,8", "--per-level", "3", "--n-filter", "8", "--k", "4", "--prefix-tokens", "12,20"]


def _run(out, *extra):
    return subprocess.Popen([sys.executable, "-m", "pathprune", "label", "--out", str(out), *ARGS, *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


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


def test_labelling_problems_together_gives_the_labels_of_one_at_a_time(tmp_path):
    """Several problems in one batch (fuller engine batches, `--problems-per-batch`): the draws are keyed by
    problem, path and cut, so every unit row and record equals labelling each problem alone, filtered-out
    problems and step cuts included."""
    from pathprune.stop.labels import label_problems, run_labelling

    model, tok = load_model("testbed")
    problems = generate("chain", 9, 2, "train") + generate("list", 5, 2, "train")
    cfg = LabelConfig(n_filter=6, k=3, prefix_tokens=(12, "step1/24"), min_correct=0.0, max_correct=0.5)
    alone = [label_problem(model, tok, p, cfg, {"seed": 0}) for p in problems]
    assert any(not unit["kept"] for unit, _ in alone) and any(unit["kept"] for unit, _ in alone)
    assert label_problems(model, tok, problems, cfg, {"seed": 0}) == alone
    with pytest.raises(PathpruneError, match="problems_per_batch must be >= 1"):
        run_labelling(model, tok, problems, cfg, tmp_path / "labels", "testbed", problems_per_batch=0)
    assert not (tmp_path / "labels").exists()


def test_labels_cut_at_reasoning_steps_where_the_engine_pauses(tmp_path):
    """``stepM/L`` cuts: each prefix ends where its path wrote its M-th step (the engine's pause point:
    StepCounter.position, tested against the engine in test_steps.py), one label per distinct prefix, named by its
    checkpoint; through the CLI too."""
    from pathprune.engine.steps import StepCounter

    model, tok = load_model("testbed")
    problem = generate("chain", 9, 1, "train")[0]
    cfg = LabelConfig(n_filter=8, k=3, prefix_tokens=("step2/30", 12), min_correct=0.0, max_correct=1.0,
                      step_delimiter="3")
    _, records = label_problem(model, tok, problem, cfg, {})
    steps = [r for r in records if r.get("checkpoint") == "step2/30"]
    assert steps and len({tuple(r["prefix_token_ids"]) for r in records}) == len(records)
    counter = StepCounter(tok, "3")
    for r in steps:
        prefix = r["prefix_token_ids"][r["prompt_len"]:]
        assert counter.count(prefix) >= 2 > counter.count(prefix[:-1]) or r["prefix_len"] == 30
    res = cli("label", "--out", str(tmp_path / "lab"), "--levels", "6", "--per-level", "1", "--n", "4", "--k", "2",
              "--prefix-tokens", "step1/20", "--step-delimiter", ";")
    assert res.returncode == 0, res.stderr
    rows = [json.loads(line) for line in (tmp_path / "lab" / "labels.jsonl").read_text().splitlines()]
    assert rows and all(r["checkpoint"] == "step1/20" for r in rows)
    assert all(tok.decode(r["prefix_token_ids"][r["prompt_len"]:]).rstrip().endswith(";") for r in rows)


def test_each_cut_continues_with_the_rest_of_its_own_budget():
    """A continuation from cut L may run max_new_tokens - L tokens (was max_new_tokens - the largest cut for every
    cut, truncating the early cuts' continuations and grading them wrong)."""
    model, tok = load_model("testbed")
    problem = generate("chain", 9, 1, "train")[0]
    cfg = LabelConfig(n_filter=8, k=4, prefix_tokens=(8, 40), max_new_tokens=48, min_correct=0.0, max_correct=1.0)
    _, records = label_problem(model, tok, problem, cfg, {})
    early = [n for r in records if r["prefix_len"] == 8 for n in r["continuation_tokens"]]
    late = [n for r in records if r["prefix_len"] == 40 for n in r["continuation_tokens"]]
    assert early and late and all(len(r["continuation_tokens"]) == 4 for r in records)
    assert max(early) > 48 - 40 and max(early) <= 48 - 8  # longer than the largest cut's budget allows
    assert max(late) <= 48 - 40


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
    assert sorted_json_lines(tmp_path / "killed" / "labels.jsonl") == sorted_json_lines(tmp_path / "ref" / "labels.jsonl")
    assert sorted_json_lines(units) == sorted_json_lines(tmp_path / "ref" / "problems.jsonl")


def test_read_official_format_and_errors(tmp_path):
    f = tmp_path / "official.jsonl"
    f.write_text(json.dumps({"prefix_token_ids": [1, 2, 3], "Soft_label": 0.25}) + "\n")
    (rec,) = read_labels(f)
    assert rec["soft_label"] == 0.25 and rec["outcomes"] == [0]
    f.write_text(json.dumps({"prefix_token_ids": [1, 2, 3]}) + "\n")
    with pytest.raises(PathpruneError, match="line 1 needs prefix_token_ids and soft_label"):
        read_labels(f)


@pytest.mark.parametrize("features", [[], ["mean_logprob"]])
def test_training_saves_the_best_epoch(tmp_path, monkeypatch, features):
    from pathprune.stop.evaluate import baseline_scores, prefix_logprobs

    model, tok = load_model("testbed")
    cfg = LabelConfig(n_filter=8, k=4, prefix_tokens=(12, 20), min_correct=0.0, max_correct=1.0)
    recs = [r for p in generate("chain", 9, 6, "train") for r in label_problem(model, tok, p, cfg, {})[1]]
    train, val = recs[: len(recs) * 2 // 3], recs[len(recs) * 2 // 3:]
    report = train_stop(model, tok, train, val, StopConfig(n_stop=2, rank=4, head_features=features),
                        TrainConfig(epochs=2, batch_size=8), tmp_path / "stop")
    assert len(report["history"]) == 2 and report["best"]["mse"] == min(h["mse"] for h in report["history"])
    saved = json.loads((tmp_path / "stop" / "stop_config.json").read_text())
    # the training record lives beside the config, not in it; the base model is named, not a path
    training = json.loads((tmp_path / "stop" / "training.json").read_text())
    assert training["history"] == report["history"] and training["best"] == report["best"]
    assert training["train"]["epochs"] == 2 and training["train_records"] == len(train)
    assert not {"history", "metrics", "train"} & set(saved) and saved["base_model"] == "testbed"
    adapter = json.loads((tmp_path / "stop" / "adapter" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == "testbed"
    assert "/" not in (tmp_path / "stop" / "adapter" / "README.md").read_text().split("---")[1]
    fresh, _ = load_model("testbed")
    loaded = load_stop(fresh, tmp_path / "stop")
    lp = prefix_logprobs(fresh, tok, val) if features else None
    probs = loaded.score_ids([r["prefix_token_ids"] for r in val], tok.pad_token_id, logprobs=lp).tolist()
    assert label_metrics(probs, val)["mse"] == pytest.approx(report["best"]["mse"], abs=1e-6)
    if not features:  # prefix caches encoded once and shared between trainings: the same training
        from pathprune.stop.module import encode_prefixes

        base, _ = load_model("testbed")
        encoded = tuple(encode_prefixes(base, [r["prefix_token_ids"] for r in recs], tok.pad_token_id, batch_size=5)
                        for recs in (train, val))
        again = train_stop(load_model("testbed")[0], tok, train, val, StopConfig(n_stop=2, rank=4),
                           TrainConfig(epochs=2, batch_size=8), tmp_path / "again", encoded=encoded)
        for a, b in zip(again["history"], report["history"]):
            assert a["train_loss"] == pytest.approx(b["train_loss"], abs=1e-5)
            assert a["mse"] == pytest.approx(b["mse"], abs=1e-6)
        # above the cache limit every step re-encodes its prefixes: the same training again
        from pathprune.stop import train as train_module

        from pathprune.engine import LiveBatch

        ids = [[5] * 10, [6] * 7]  # the estimate is what a cache of these prefixes really holds
        assert train_module.prefix_cache_bytes(base, ids) == sum(
            LiveBatch.launch(base, [p], 1, tok.pad_token_id).cache_bytes() for p in ids)
        monkeypatch.setattr(train_module, "PREFIX_CACHE_LIMIT", 0)
        reencoded = train_stop(load_model("testbed")[0], tok, train, val, StopConfig(n_stop=2, rank=4),
                               TrainConfig(epochs=2, batch_size=8), tmp_path / "reencoded")
        for a, b in zip(reencoded["history"], report["history"]):
            assert a["train_loss"] == pytest.approx(b["train_loss"], abs=1e-5)
            assert a["mse"] == pytest.approx(b["mse"], abs=1e-6)
    # the critique adapter really trained (LoRA B starts at zero)
    lora_b = [p for n, p in loaded.peft.named_parameters() if "lora_B" in n]
    assert lora_b and all(p.abs().sum() > 0 for p in lora_b)
    if features:  # standardised with the training prefixes' statistics; the feature weight trained
        mean_lp = torch.tensor(baseline_scores(fresh, tok, train)["mean_logprob"])
        assert saved["feature_mean"][0] == pytest.approx(mean_lp.mean().item(), abs=1e-5)
        assert saved["feature_std"][0] == pytest.approx(mean_lp.std().item(), abs=1e-5)
        assert loaded.feature_head.weight.abs().item() > 0


def test_training_targets_from_the_first_k_rollouts():
    from pathprune.stop.scorer_training import training_targets

    recs = [{"soft_label": 0.75, "outcomes": [1, 0, 1, 1]}, {"soft_label": 0.25, "outcomes": [0, 0, 1, 0]}]
    assert training_targets(recs, TrainConfig()) == [0.75, 0.25]
    assert training_targets(recs, TrainConfig(label_k=2)) == [0.5, 0.0]
    assert training_targets(recs, TrainConfig(label_k=3)) == [2 / 3, 1 / 3]
    assert training_targets(recs, TrainConfig(hard_labels=True)) == [1.0, 0.0]
    with pytest.raises(PathpruneError, match="label_k=5 needs 5 rollout outcomes per record; 2 of 2"):
        training_targets(recs, TrainConfig(label_k=5))
    for bad in (0, True, 2.0):
        with pytest.raises(PathpruneError, match="label_k must be an integer >= 1"):
            TrainConfig(label_k=bad)
    with pytest.raises(PathpruneError, match="cannot be combined with label_k=4"):
        TrainConfig(hard_labels=True, label_k=4)


def test_listwise_and_pairwise_losses_by_hand():
    import math
    import random

    import torch

    from pathprune.stop.scorer_training import grouped_batches, listwise_loss, pairwise_loss

    z = torch.tensor([0.3, -1.2, 2.0, 0.5])
    # a group whose labels are all equal carries no ranking information: zero, whatever the scores
    for loss in (listwise_loss, pairwise_loss):
        assert loss(z, torch.tensor([0.5, 0.5, 0.5, 0.5]), ["g"] * 4).item() == 0.0
    # toy pair, labels 0.75 / 0.25 (target distribution 3/4, 1/4), logits 0 / 0:
    # KL = 3/4 log(3/4 / 1/2) + 1/4 log(1/4 / 1/2); pairwise = 0.5 * log(1 + e^0) / 0.5 = log 2
    y, z2 = torch.tensor([0.75, 0.25]), torch.zeros(2)
    kl = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    assert listwise_loss(z2, y, ["a", "a"]).item() == pytest.approx(kl, abs=1e-6)
    assert pairwise_loss(z2, y, ["a", "a"]).item() == pytest.approx(math.log(2), abs=1e-6)
    # the right order costs less than the wrong one; the gradient pushes the better path up
    for loss in (listwise_loss, pairwise_loss):
        good, bad = torch.tensor([1.0, -1.0]), torch.tensor([-1.0, 1.0])
        assert loss(good, y, ["a", "a"]) < loss(bad, y, ["a", "a"])
        g = torch.zeros(2, requires_grad=True)
        loss(g, y, ["a", "a"]).backward()
        assert g.grad[0] < 0 < g.grad[1]
    # invariant to a shift of one group's scores (only within-group differences count); groups are separate
    groups = ["a", "a", "b", "b"]
    yy = torch.tensor([0.75, 0.25, 0.2, 0.6])
    zz = torch.tensor([0.1, 0.4, -0.3, 0.9])
    shifted = zz + torch.tensor([5.0, 5.0, -2.0, -2.0])
    for loss in (listwise_loss, pairwise_loss):
        assert loss(zz, yy, groups).item() == pytest.approx(loss(shifted, yy, groups).item(), abs=1e-5)
    # batches hold whole (problem, cut) groups
    recs = [{"problem_id": f"p{i % 5}", "prefix_len": 12 + 4 * (i % 2), "prefix_token_ids": [1]} for i in range(40)]
    batches = grouped_batches(recs, 8, random.Random(0))
    assert sorted(i for b in batches for i in b) == list(range(40))
    owner = {(r["problem_id"], r["prefix_len"]): set() for r in recs}
    for n, b in enumerate(batches):
        for i in b:
            owner[(recs[i]["problem_id"], recs[i]["prefix_len"])].add(n)
    assert all(len(v) == 1 for v in owner.values())
    # epoch selection: lowest MSE (official) or highest within-problem AUROC
    from pathprune.stop.scorer_training import better

    a, b = {"mse": 0.10, "within_auroc": 0.70}, {"mse": 0.12, "within_auroc": 0.75}
    assert better(a, b, "mse") and not better(a, b, "within_auroc") and better(b, a, "within_auroc")
    with pytest.raises(PathpruneError, match="loss must be one of"):
        TrainConfig(loss="hinge")
    with pytest.raises(PathpruneError, match="select must be one of"):
        TrainConfig(select="auroc")


def test_reasoner_labels_never_use_its_sft_problems(tmp_path):
    """Label problems for the reasoner are drawn outside its SFT pool (issue #25: the earlier labels used the train
    split at seed 0, the very pool the SFT drew from). The generator at seed 0 repeats the pool's 500 problems per
    level first, so 501 per level leave exactly one new problem at level 3."""
    from pathprune.evaluation.sources import load_problems
    from pathprune.models.train_reasoner import sft_problem_ids

    pool = sft_problem_ids("smollm2-135m-reasoner")
    assert len(pool) == 3000 and sft_problem_ids("testbed") == frozenset()
    every = load_problems("reasoner:3,4,5", "train", per_level=520, exclude=())
    outside = load_problems("reasoner:3,4,5", "train", per_level=520, exclude=pool)
    assert len(every) == 1560 and sum(p.id in pool for p in every) == 1500
    assert len(outside) == 60 and not any(p.id in pool for p in outside)
    with pytest.raises(PathpruneError, match="without the excluded problems"):
        load_problems("reasoner:3", "train", per_level=500, exclude=pool)
    out = tmp_path / "labels"
    done = subprocess.run([sys.executable, "-m", "pathprune", "label", "--out", str(out), "--model",
                           "smollm2-135m-reasoner", "--benchmark", "reasoner:3", "--testbed-split", "train",
                           "--per-level", "501", "--n", "2", "--k", "1", "--prefix-tokens", "4",
                           "--max-new-tokens", "8", "--min-correct", "0", "--max-correct", "1"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "1 problems outside smollm2-135m-reasoner's SFT pool of 3000" in done.stdout
    ids = {r["problem_id"] for r in read_labels(out)}
    assert len(ids) == 1 and not ids & pool


COMMITTED_LABELS = ROOT / "benchmarks" / "data" / "reasoner-labels"
PIPELINE_PER_LEVEL = {"train": 700, "validation": 40, "test": 60}  # benchmarks/reasoner_pipeline.sh's splits


@pytest.mark.parametrize("split", ["labels-train", "labels-validation"])
def test_the_committed_reasoner_labels_are_what_the_pipeline_writes_outside_the_sft_pool(split):
    """The labels the repository carries for benchmarks/reasoner_pipeline.sh (issue #25) are a resumable run
    directory of exactly its command: its problems outside the reasoner's SFT pool and in the pipeline's order,
    one record per distinct prefix at L = 48, each soft label the mean of its K graded continuations."""
    import gzip

    from pathprune.evaluation.sources import load_problems
    from pathprune.models.train_reasoner import sft_problem_ids

    folder = COMMITTED_LABELS / split
    if not folder.is_dir():
        pytest.skip(f"no committed {split}")
    config = json.loads((folder / "config.json").read_text())
    units = [json.loads(line) for line in (folder / "problems.jsonl").read_text().splitlines()]
    records = [json.loads(line) for line in gzip.open(folder / "labels.jsonl.gz", "rt")]
    pool = sft_problem_ids("smollm2-135m-reasoner")
    name = split.removeprefix("labels-")
    planned = [p.id for p in load_problems("reasoner:3,4,5", name, per_level=PIPELINE_PER_LEVEL[name], exclude=pool)]
    assert config["model"] == "smollm2-135m-reasoner" and config["problems"] == planned
    assert config["label"]["prefix_tokens"] == [48] and config["label"]["k"] == 8
    done = [u["problem_id"] for u in units]
    assert done == planned[:len(done)] and not set(done) & pool  # resumed in order, nothing from the SFT pool
    kept = {u["problem_id"]: u["prefixes"] for u in units if u["kept"]}
    assert {r["problem_id"] for r in records} <= set(kept)
    assert sum(kept.values()) == len(records)
    by_problem: dict[str, set] = {}
    for r in records:
        assert r["prefix_len"] == 48 and len(r["prefix_token_ids"]) == r["prompt_len"] + 48
        assert len(r["outcomes"]) == 8 and r["soft_label"] == sum(r["outcomes"]) / 8
        by_problem.setdefault(r["problem_id"], set()).add(tuple(r["prefix_token_ids"]))
    assert sum(map(len, by_problem.values())) == len(records)  # one record per distinct prefix


def test_the_reasoner_pipeline_splits_share_no_problem():
    """Training labels, validation labels (which choose epochs and settings) and the verdict's test problems
    of benchmarks/reasoner_pipeline.sh are three disjoint sets, none of them in the reasoner's SFT pool."""
    from pathprune.evaluation.sources import load_problems
    from pathprune.models.train_reasoner import sft_problem_ids

    pool = sft_problem_ids("smollm2-135m-reasoner")
    # as the pipeline loads them: `pathprune label` drops the SFT pool, `pathprune eval` takes its split whole
    ids = {split: {p.id for p in load_problems("reasoner:3,4,5", split, per_level=per_level,
                                               exclude=() if split == "test" else pool)}
           for split, per_level in PIPELINE_PER_LEVEL.items()}
    assert [len(s) for s in ids.values()] == [600, 120, 180]
    assert not ids["train"] & ids["validation"] and not ids["train"] & ids["test"]
    assert not ids["validation"] & ids["test"] and not set().union(*ids.values()) & pool
