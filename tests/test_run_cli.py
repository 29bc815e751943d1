"""`pathprune run` end to end on real files: logs, resumption after a kill, config guard."""

import json

import pytest

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


def test_signal_without_pruning_warns_and_runs(tmp_path):
    """A signal with --schedule none: a warning, then the same run as without it (every path kept)."""
    out = tmp_path / "run"
    res = cli("run", "--out", str(out), "--levels", "6", "--per-level", "1", "--n", "3", "--signal", "mean_logprob")
    assert res.returncode == 0, res.stderr
    assert "warning: --schedule none: nothing is pruned, the signal is unused (mean_logprob)" in res.stderr
    paths = _lines(out / "paths.jsonl")
    assert len(paths) == 6 and all(p["kept"] for p in paths)
    assert "warning" not in cli("run", "--out", str(tmp_path / "plain"), "--levels", "6", "--per-level", "1",
                                "--n", "3").stderr  # the default signal is not a choice worth a warning


def test_a_failed_start_never_blocks_the_corrected_command(tmp_path):
    from pathprune.errors import PathpruneError
    from pathprune.io.runlog import RunLog, cleaned_on_failure, is_failed_start

    stale = tmp_path / "stale"  # what a start refused after writing its config left behind
    RunLog(stale, {"signals": ["random", "nosuch"]})
    assert is_failed_start(stale)
    log = RunLog(stale, {"signals": ["random"]})  # the corrected config replaces it
    assert json.loads((stale / "config.json").read_text()) == {"signals": ["random"]}
    log.append({"problem_id": "a"}, [{"problem_id": "a", "path": 0}])
    assert not is_failed_start(stale)
    with pytest.raises(PathpruneError, match="different config"):  # a run with records is never replaced
        RunLog(stale, {"signals": ["jaccard"]})

    new = tmp_path / "new"
    with pytest.raises(PathpruneError), cleaned_on_failure(new):
        RunLog(new, {"x": 1})
        raise PathpruneError("refused after the config was written")
    assert not new.exists()
    kept = tmp_path / "kept"
    with pytest.raises(PathpruneError), cleaned_on_failure(kept):
        RunLog(kept, {"x": 1}).append({"problem_id": "a"}, [])
        raise PathpruneError("failed after a record")
    assert (kept / "problems.jsonl").read_text()  # records are kept for resuming

    # through the CLI: a stale directory from another config, then the corrected command runs into it
    out = tmp_path / "run"
    RunLog(out, {"eval": "something else"})
    res = cli("run", "--out", str(out), "--levels", "6", "--per-level", "1", "--n", "2")
    assert res.returncode == 0, res.stderr
    assert len(_lines(out / "problems.jsonl")) == 2


def _markdown_tables(text: str) -> list[list[list[str]]]:
    """Every table of a Markdown file as rows of cells, split as GitHub does: at each ``|`` not escaped."""
    import re

    tables, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            current.append([c.strip() for c in re.split(r"(?<!\\)\|", line.strip()[1:-1])])
        elif current:
            tables.append(current)
            current = []
    return tables


def test_report_tables_keep_every_value_under_its_header(tmp_path):
    """The header avg@k|N once split its cell: every value then sat one column left of its header."""
    from html.parser import HTMLParser

    out = tmp_path / "eval"
    res = cli("eval", "--out", str(out), "--levels", "6", "--per-level", "1", "--n", "4", "--prefix", "12",
              "--keep", "2", "--signals", "random,mean_logprob", "--bootstrap", "20")
    assert res.returncode == 0, res.stderr
    tables = _markdown_tables((out / "report.md").read_text())
    assert len(tables) >= 2
    for table in tables:
        assert all(len(row) == len(table[0]) for row in table), table[0]
    detail = next(t for t in tables if "setting" in t[0])
    assert r"avg@k\|N % [95% CI]" in detail[0]  # escaped, one cell

    class Rows(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tables: list[list[list[str]]] = []

        def handle_starttag(self, tag, attrs):
            if tag == "table":
                self.tables.append([])
            elif tag == "tr":
                self.tables[-1].append([])
            elif tag in ("td", "th"):
                self.tables[-1][-1].append("")

        def handle_data(self, data):
            if self.tables and self.tables[-1] and self.tables[-1][-1]:
                self.tables[-1][-1][-1] += data

    parser = Rows()
    parser.feed((out / "report.html").read_text())
    assert len(parser.tables) == len(tables)
    for table in parser.tables:
        assert all(len(row) == len(table[0]) for row in table), table[0]
    detail = next(t for t in parser.tables if t[0][0] == "setting")
    assert detail[0][2] == "avg@k|N % [95% CI]" and detail[0][3].startswith("cons@k")


def test_run_with_a_step_schedule_and_delimiter(tmp_path):
    out = tmp_path / "steps"
    res = cli("run", "--out", str(out), "--levels", "6", "--per-level", "1", "--n", "4", "--schedule",
              "step2/30:2", "--step-delimiter", ";", "--signal", "mean_logprob")
    assert res.returncode == 0, res.stderr
    paths = _lines(out / "paths.jsonl")
    pruned = [p for p in paths if not p["kept"]]
    assert len(pruned) == 4 and all(p["tokens"] < 30 for p in pruned)  # paused at the 2nd ";", not the cap
    config = json.loads((out / "config.json").read_text())
    assert config["sampling"]["step_delimiter"] == ";" and config["schedule"] == "step2/30:2"
    bad = cli("run", "--out", str(tmp_path / "bad"), "--schedule", "step2:2")
    assert bad.returncode != 0 and "stepM/L:k" in bad.stderr and not (tmp_path / "bad").exists()
