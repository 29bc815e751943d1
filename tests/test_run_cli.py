"""`pathprune run` end to end on real files: logs, resumption after a kill, config guard."""

import json

from conftest import cli

ARGS = ["--levels", "6", "--per-level", "2", "--n", "4", "--schedule", "12:2", "--signal", "mean_logprob",
        "--problems-per-batch", "3"]


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_run_logs_and_resumes(tmp_path):
    out = tmp_path / "run"
    res = cli("run", "--out", str(out), *ARGS)
    assert res.returncode == 0, res.stderr
    problems, paths = _lines(out / "problems.jsonl"), _lines(out / "paths.jsonl")
    assert len(problems) == 4 and len(paths) == 16  # 2 families x 2 problems, 4 paths each
    assert sum(p["kept"] for p in paths) == 8
    summary = json.loads((out / "summary.json").read_text())
    assert summary["usage"]["generated"] == sum(p["tokens"] for p in paths)
    assert summary["usage"]["pruned_prefix"] == 8 * 12

    # simulate a kill: one problem finished, all path lines of the next but not its problem line,
    # and a torn line
    (out / "problems.jsonl").write_text(json.dumps(problems[0]) + "\n")
    mine = [p for p in paths if p["problem_id"] in (problems[0]["problem_id"], problems[1]["problem_id"])]
    (out / "paths.jsonl").write_text("".join(json.dumps(p) + "\n" for p in mine) + '{"problem_id": "x", "pa')
    res = cli("run", "--out", str(out), *ARGS)
    assert res.returncode == 0, res.stderr
    def stable(rows):  # wall times and batch memory depend on what was batched together
        return [{k: v for k, v in r.items() if k not in ("times", "memory")} for r in rows]

    assert stable(_lines(out / "problems.jsonl")) == stable(problems)  # every problem once, same results

    def rounded(rows):  # scores carry float noise from the batch layout (~1e-7)
        return sorted(json.dumps({**r, "scores": [float(f"{x:.5g}") for x in r["scores"]]}) for r in rows)

    assert rounded(_lines(out / "paths.jsonl")) == rounded(paths)


def test_run_refuses_another_config_and_reads_benchmark_files(tmp_path):
    out = tmp_path / "run"
    assert cli("run", "--out", str(out), *ARGS).returncode == 0
    res = cli("run", "--out", str(out), *ARGS[:-2], "--problems-per-batch", "1", "--seed", "3")
    assert res.returncode == 2 and "different config (problems_per_batch, sampling)" in res.stderr
    bench = tmp_path / "mini.jsonl"
    bench.write_text("".join(json.dumps({"id": i, "prompt": p, "answer": a, "answer_kind": "testbed"}) + "\n"
                             for i, (p, a) in enumerate([("C 3 + 4 =", "7"), ("C 2 * 3 =", "6")])))
    res = cli("run", "--out", str(tmp_path / "b"), "--benchmark", str(bench), "--n", "4", "--schedule", "none")
    assert res.returncode == 0, res.stderr
    rows = _lines(tmp_path / "b" / "problems.jsonl")
    assert [r["problem_id"] for r in rows] == ["mini-0", "mini-1"] and all(r["correct"] for r in rows)
    res = cli("run", "--out", str(tmp_path / "c"), "--schedule", "12:9", "--n", "4")
    assert res.returncode == 2 and "k must be in [1, 4], got k=9" in res.stderr
    assert not (tmp_path / "c").exists()  # refused before anything was written
