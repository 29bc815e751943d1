"""The evaluation harness: exact equality with real pruned runs, metric definitions by hand, CLI end to end."""

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from pathprune.cli import main
from pathprune.engine import SamplingParams
from pathprune.evaluation.harness import SharedLaunch
from pathprune.evaluation.offline import Setting, kept_paths, outcome
from pathprune.evaluation.summary import summarise
from pathprune.testbed.problems import generate
from conftest import cli, run_pruner

SIGNALS = ["random", "mean_logprob", "jaccard", "conf_lowest", "stop"]


def test_offline_pruning_equals_a_real_pruned_run(testbed):
    """Every (signal, L, k) read from one shared launch is the run Pruner does with schedule L:k."""
    model, tok = testbed
    problems = generate("chain", 8, 3, "test", 1) + generate("list", 6, 2, "test", 1)
    sp = SamplingParams(n=8, temperature=1.0, max_new_tokens=120, seed=5)
    logs = list(SharedLaunch(model, tok, SIGNALS, [14, 24], sp, problems_per_batch=2).run(problems))
    assert [lg.unit["problem_id"] for lg in logs] == [p.id for p in problems]
    distinct = set()
    for sig in SIGNALS:
        for L, k in [(14, 2), (24, 5)]:
            for res, lg in zip(run_pruner(problems, model, tok, sig, f"{L}:{k}", sp, problems_per_batch=2), logs):
                o = outcome(lg.unit, lg.paths, Setting(sig, L, k))
                assert o.kept == [p.index for p in res.paths if p.kept], (sig, L, k)
                assert o.usage == res.usage and o.vote_correct == res.correct
                by_index = {p["path_index"]: p for p in lg.paths}
                for p, correct in zip(res.paths, res.path_correct):
                    if p.kept:  # the shared run finished the same path to the same text
                        assert by_index[p.index]["text"] == p.text
                        assert by_index[p.index]["correct"] == correct
                distinct.add(tuple(o.kept))
    assert len(distinct) > 5  # signals really chose differently
    base = run_pruner(problems, model, tok, "random", None, sp, problems_per_batch=2)
    for res, lg in zip(base, logs):
        o = outcome(lg.unit, lg.paths, Setting(None))
        assert o.usage == res.usage and o.vote_correct == res.correct and len(o.kept) == 8


def test_step_checkpoints_read_off_one_launch_equal_real_step_runs(testbed):
    """Fixed lengths and step checkpoints read off the same launch: each (signal, checkpoint, k) is the run Pruner
    does with that one-stage schedule, each path checked at its own length (signals that score paths one by one;
    a set-dependent one such as jaccard sees the other paths where the shared barrier holds them)."""
    model, tok = testbed
    problems = generate("chain", 8, 3, "test", 2) + generate("list", 6, 2, "test", 2)
    sp = SamplingParams(n=8, temperature=1.0, max_new_tokens=120, seed=6, step_delimiter="3")
    signals = ["random", "mean_logprob", "conf_lowest", "stop", "oracle:2"]
    checkpoints = [14, "step2/30", "step4/48"]
    logs = list(SharedLaunch(model, tok, signals, checkpoints, sp, problems_per_batch=2).run(problems))
    lengths = set()
    for sig in signals:
        for cp, k in [(14, 3), ("step2/30", 2), ("step4/48", 3)]:
            for res, lg in zip(run_pruner(problems, model, tok, sig, f"{cp}:{k}", sp, problems_per_batch=2), logs):
                o = outcome(lg.unit, lg.paths, Setting(sig, cp, k))
                assert o.kept == [p.index for p in res.paths if p.kept], (sig, cp, k)
                assert o.vote_correct == res.correct
                # an external scorer's re-encoding charge is split over the rows scored together, and a shared
                # barrier holds rows at several checkpoints: every other count is exact
                assert replace(o.usage, reencoded=0) == replace(res.usage, reencoded=0)
                assert (o.usage.reencoded == res.usage.reencoded) or sig.startswith("oracle")
                by_index = {p["path_index"]: p for p in lg.paths}
                for p in res.paths:
                    if p.checked_at and isinstance(cp, str):
                        assert by_index[p.index]["checked_at"][cp] == p.checked_at[0]
                        lengths.add(p.checked_at[0])
                    assert by_index[p.index]["signals"][sig].get(str(cp), [None])[0] == \
                        (pytest.approx(p.scores[0], abs=1e-5) if p.scores else None)
    assert len(lengths) >= 5  # the step checkpoints caught paths at many different lengths


def _path(i, tokens, answer, correct, score=None, L=10, check=4, reenc=0):
    signals = {} if score is None else {"s": {str(L): [score, check, reenc]}}
    return {"path_index": i, "tokens": tokens, "answer": answer, "correct": correct, "finished": True,
            "signals": signals}


def test_rank_statistics_by_hand():
    from pathprune.stats import auroc, average_ranks, spearman

    assert average_ranks([0.3, 0.1, 0.3, 0.9]) == [2.5, 1.0, 2.5, 4.0]
    assert auroc([0.3, 0.1, 0.3, 0.9], [1, 0, 0, 1]) == pytest.approx(0.875)  # (1 + 0.5 + 1 + 1) / 4
    assert spearman([1, 2, 3], [10, 30, 20]) == pytest.approx(0.5)  # ranks 1,2,3 vs 1,3,2: 1 - 6*2 / (3*8)
    assert spearman([1, 2, 2, 3], [4, 3, 3, 1]) == pytest.approx(-1.0)
    assert spearman([1, 1, 1], [1, 2, 3]) is None


def test_metrics_by_hand():
    # problem A (ref "7"): 4 paths; path 3 ended before L=10 (6 tokens) so it is kept unscored.
    unit_a = {"unit_id": "A@0", "problem_id": "A", "reference": "7", "answer_kind": "testbed", "prompt_tokens": 5,
              "seconds": {"launch": {"10": 1.0}, "all_paths": 3.0, "check": {"s": {"10": 0.5}}}}
    paths_a = [_path(0, 30, "7", True, 0.9), _path(1, 40, "3", False, 0.95), _path(2, 20, "3", False, 0.1),
               _path(3, 6, "3", False)]
    # k=1 keeps path 1 (best score) plus the early path 3: kept {1, 3}, both wrong, vote "3" wrong
    o = outcome(unit_a, paths_a, Setting("s", 10, 1))
    assert o.kept == [1, 3] and o.correct == [False, False] and not o.vote_correct and o.avg == 0.0
    # tokens: pruned 0 and 2 spent 10 each; kept 1: 10 prefix + 30; kept 3: 6 prefix; check 3 live rows x 4
    assert (o.usage.pruned_prefix, o.usage.kept_prefix, o.usage.kept_continuation, o.usage.check) == (20, 16, 30, 12)
    assert o.usage.generated == 66 and o.usage.prompt == 5
    o2 = outcome(unit_a, paths_a, Setting("s", 10, 2))
    assert o2.kept == [0, 1, 3] and o2.avg == pytest.approx(1 / 3) and not o2.vote_correct and o2.any_correct
    none = outcome(unit_a, paths_a, Setting(None))
    assert none.kept == [0, 1, 2, 3] and none.usage.generated == 96 and none.usage.check == 0
    # ties to 5 significant digits go to the lower path index
    tied = [_path(0, 30, "7", True, 0.5000001), _path(1, 30, "3", False, 0.5000002), _path(2, 30, "3", False, 0.4)]
    assert kept_paths(tied, Setting("s", 10, 1)) == [0]

    # problem B (ref "5") run with two seeds: per-problem values average over seeds first
    def unit_b(seed):
        return {**unit_a, "unit_id": f"B@{seed}", "problem_id": "B", "reference": "5", "seed": seed}
    paths_b0 = [_path(0, 20, "5", True, 0.2), _path(1, 20, "5", True, 0.8), _path(2, 20, "4", False, 0.5)]
    paths_b1 = [_path(0, 20, "4", False, 0.9), _path(1, 20, "5", True, 0.1), _path(2, 20, "4", False, 0.5)]
    units = [unit_a, unit_b(0), unit_b(1)]
    paths = {"A@0": paths_a, "B@0": paths_b0, "B@1": paths_b1}
    none_row, k1 = summarise(units, paths, [Setting(None), Setting("s", 10, 1)], n_boot=200)
    # no pruning: avg@N A = 1/4, B = (2/3 + 1/3)/2 = 1/2 -> 3/8; cons@N A wrong, B seed0 right, seed1 wrong -> 1/4
    assert none_row["avg"] == pytest.approx(3 / 8) and none_row["cons"] == pytest.approx(1 / 4)
    assert none_row["pass"] == pytest.approx(1.0) and none_row["delta"] == 0.0 and none_row["problems"] == 2
    # k=1: A avg 0, cons 0; B seed0 keeps path 1 (right), seed1 path 0 (wrong) -> B avg 1/2, cons 1/2
    assert k1["avg"] == pytest.approx(1 / 4) and k1["cons"] == pytest.approx(1 / 4) and k1["pass"] == pytest.approx(1 / 4)
    # tokens per problem: A 66 (none 96); B: each seed 2x10 pruned + 20 kept = 40 (none 60)
    assert k1["tokens"] == pytest.approx((66 + 40) / 2) and k1["delta"] == pytest.approx(1 - 106 / 156)
    lo, hi = k1["avg_ci"]
    assert 0.0 <= lo <= k1["avg"] <= hi <= 0.5
    assert none_row["pass_ci"] == (1.0, 1.0)  # every resample has the same value


ARGS = ["--levels", "8", "--per-level", "3", "--n", "8", "--prefix", "12,20", "--keep", "2,4",
        "--signals", "random,mean_logprob,stop", "--bootstrap", "200", "--problems-per-batch", "2"]


def test_eval_cli_reports_resumes_and_rebuilds(tmp_path):
    out = tmp_path / "ev"
    res = cli("eval", "--out", str(out), *ARGS)
    assert res.returncode == 0, res.stderr
    assert "stop @12:2" in res.stdout and "report.html" in res.stdout
    units = [json.loads(x) for x in (out / "problems.jsonl").read_text().splitlines()]
    paths = [json.loads(x) for x in (out / "paths.jsonl").read_text().splitlines()]
    assert len(units) == 6 and len(paths) == 48
    summary = json.loads((out / "summary.json").read_text())
    labels = [r["label"] for r in summary["rows"]]
    assert labels[0] == "no pruning" and len(labels) == 1 + 3 * 2 * 2
    assert set(summary["by_dataset"]) == {"testbed-chain", "testbed-list", "all"}
    none = summary["rows"][0]
    assert none["usage"]["generated"] == sum(p["tokens"] for p in paths)
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3 and "stop (IV)" in html
    md = (out / "report.md").read_text()
    assert "| testbed | testbed-chain (3) |" in md and "![accuracy_vs_tokens](accuracy_vs_tokens.png)" in md
    # every signal against its paths' outcomes at both cuts, and the prefix ceiling, which no signal exceeds
    outcome = summary["outcome_auroc"]
    assert {(r["signal"], r["prefix"]) for r in outcome} == {(s, L) for s in ("random", "mean_logprob", "stop",
                                                                             "prefix ceiling") for L in (12, 20)}
    for L in (12, 20):
        at = {r["signal"]: r for r in outcome if r["prefix"] == L}
        assert all(r["within_auroc"] <= at["prefix ceiling"]["within_auroc"] + 1e-9 for r in at.values()
                   if r["within_auroc"] is not None)
    assert "Within-problem AUROC against the paths' own outcomes (L = 12" in md and "| prefix ceiling | – |" in md
    assert all(p["token_ids"] and len(p["token_ids"]) == p["tokens"] for p in paths)

    # a killed run: drop the last unit and tear the paths file; the rerun completes it exactly once
    (out / "problems.jsonl").write_text("".join(json.dumps(u) + "\n" for u in units[:-1]))
    (out / "paths.jsonl").write_text((out / "paths.jsonl").read_text() + '{"unit_id": "x", "pa')
    (out / "summary.json").unlink()
    res = cli("eval", "--out", str(out), *ARGS)
    assert res.returncode == 0, res.stderr
    again = [json.loads(x) for x in (out / "problems.jsonl").read_text().splitlines()]
    assert sorted(u["unit_id"] for u in again) == sorted(u["unit_id"] for u in units)
    rows = json.loads((out / "summary.json").read_text())["rows"]
    assert [r["avg"] for r in rows] == [r["avg"] for r in summary["rows"]]

    md = (out / "report.md").read_text()
    (out / "report.md").unlink()
    assert main(["report", str(out), "--bootstrap", "200"]) == 0 and (out / "report.md").read_text() == md


def test_eval_refuses_bad_settings(tmp_path, capsys):
    assert main(["eval", "--out", str(tmp_path / "a"), "--n", "4", "--keep", "8"]) == 2
    assert "keep k=8 is impossible with N=4" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()
    assert main(["eval", "--out", str(tmp_path / "b"), "--prefix", "500", "--max-new-tokens", "100"]) == 2
    assert "checkpoint 500 must be below max_new_tokens=100" in capsys.readouterr().err
    assert main(["eval", "--out", str(tmp_path / "c"), "--signals", "mean_logprb"]) == 2
    assert "mean_logprob" in capsys.readouterr().err  # did-you-mean
    assert main(["report", str(tmp_path)]) == 2
    assert "not an evaluation run directory" in capsys.readouterr().err


@pytest.mark.slow
def test_eval_runs_on_smollm2(tmp_path, benchmarks_dir):
    """The real-model path: SmolLM2-135M (GGUF) on two AIME problems, small N."""
    out = tmp_path / "smol"
    code = main(["eval", "--out", str(out), "--model", "smollm2-135m", "--benchmark",
                 str(benchmarks_dir / "aime_2025.json"), "--limit", "2", "--n", "3", "--prefix", "8",
                 "--keep", "1", "--max-new-tokens", "24", "--signals", "random,mean_logprob,jaccard",
                 "--bootstrap", "50"])
    assert code == 0
    units = [json.loads(x) for x in (out / "problems.jsonl").read_text().splitlines()]
    assert len(units) == 2 and all(u["dataset"] == "aime_2025" for u in units)
    paths = [json.loads(x) for x in (out / "paths.jsonl").read_text().splitlines()]
    assert len(paths) == 6 and all(1 <= p["tokens"] <= 24 for p in paths)


def test_signal_quality_and_paired_gain_by_hand():
    from pathprune.evaluation.summary import paired_gain, signal_quality

    def path(i, correct, s, o):
        return {"path_index": i, "tokens": 20, "answer": "7" if correct else "3", "correct": correct,
                "finished": True, "signals": {"s": {"10": [s, 0, 0]}, "o": {"10": [o, 0, 0]}}}

    unit = {"unit_id": "A@0", "problem_id": "A", "reference": "7", "answer_kind": "testbed", "prompt_tokens": 1}
    # MC labels (o >= 0.5): paths 0, 1 positive; s ranks 0 > 2 > 1 > 3 -> 3 of 4 pairs right = 0.75
    paths = {"A@0": [path(0, True, 0.9, 0.8), path(1, True, 0.3, 0.6), path(2, False, 0.5, 0.2),
                     path(3, False, 0.1, 0.0)]}
    (row,) = signal_quality([unit], paths, ["s"], "o", 10)
    assert row["prefixes"] == 4 and row["auroc"] == 0.75 and row["within_auroc"] == 0.75
    # k=1: "s" keeps path 0 (right), "o" keeps path 0 too -> gain 0; k=2: s keeps {0,2} (1/2), o keeps {0,1} (1)
    assert paired_gain([unit], paths, Setting("s", 10, 2), Setting("o", 10, 2), n_boot=50) == (-0.5, -0.5, -0.5)
    assert paired_gain([unit], paths, Setting("s", 10, 1), Setting("o", 10, 1), n_boot=50)[0] == 0.0


def test_hub_dataset_spec_fails_in_one_line_offline(tmp_path):
    """`--benchmark hf:NAME[:SPLIT]` loads a hub dataset; without `datasets` or a hub it is one clear line.
    HF_HUB_OFFLINE: the hub client's answer at once, not after its ~20 s of retries on a machine without a network."""
    res = cli("eval", "--out", str(tmp_path / "hub"), "--benchmark", "hf:openai/gsm8k:test", "--n", "2", "--keep", "1",
              env={**os.environ, "HF_HUB_OFFLINE": "1"})
    err = res.stderr
    assert res.returncode == 2, err
    assert "hf:openai/gsm8k:test" in err and ("datasets` package" in err or "cannot load from the hub" in err)
    assert err.count("\n") == 1 and not (tmp_path / "hub").exists()


def test_path_auroc_counts_right_paths_in_the_common_prefix_and_the_others():
    """benchmarks/path_auroc.py's prefix groups on a hand-built run: problem a holds prefix X three times (2 of
    3 right) and Y once (right); problem b's only live path is its common prefix (wrong), its other path ended
    before the checkpoint and counts nowhere."""
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "path_auroc.py"
    spec = importlib.util.spec_from_file_location("path_auroc", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    def p(ids, correct, score=0.5):
        return {"token_ids": ids, "tokens": len(ids), "correct": correct, "signals": {"random": {"4": score}}}

    paths = {"a": [p([1, 2, 3, 4, 9], 1), p([1, 2, 3, 4, 8], 1), p([1, 2, 3, 4, 7], 0), p([1, 2, 3, 5, 9], 1)],
             "b": [p([5, 5, 5, 5, 5], 0), p([5, 5], 1, score=None)]}
    groups = module.prefix_groups([{"unit_id": "a"}, {"unit_id": "b"}], paths, 4, "random")
    assert groups == {"prefix": 4, "prefixes_per_problem": 1.5, "common_paths": 4, "other_paths": 1,
                      "common_right": 0.5, "other_right": 1.0}
    no_ids = {"a": [{k: v for k, v in q.items() if k != "token_ids"} for q in paths["a"]]}
    assert module.prefix_groups([{"unit_id": "a"}], no_ids, 4, "random") is None  # a run without token ids
