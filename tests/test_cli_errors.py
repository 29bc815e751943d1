"""Bad command lines: exit status 2, one line on stderr, no traceback, and nothing left behind in the working
directory (issue 18).

Each case runs the command line's entry point (``pathprune.cli.main``, what the console script calls) in this
process, ~2 s of interpreter start-up less per case; ``serve``'s cases go through the real console script instead
(a missing option check would start a server), and the first case of each other group as well. Most
invocations fail before a model is loaded; broken checkpoints are copies of the shipped ones with one file damaged.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pathprune.cli import main
from pathprune.signals.judges.signals import TESTBED_JUDGE
from pathprune.signals.stop_signal import TESTBED_STOP

SCRIPT = Path(sys.executable).with_name("pathprune")  # the console script installed beside this interpreter


def _edit_json(file: Path, **changes) -> None:
    file.write_text(json.dumps({**json.loads(file.read_text()), **changes}))


def _truncate(file: Path, keep: int) -> None:
    file.write_bytes(file.read_bytes()[:keep])


@pytest.fixture(scope="module")
def bad(tmp_path_factory) -> dict[str, Path]:
    """Damaged checkpoints, one defect each."""
    root = tmp_path_factory.mktemp("bad")
    out: dict[str, Path] = {}

    def stop(name, damage):
        out[name] = root / name
        shutil.copytree(TESTBED_STOP, out[name])
        damage(out[name])

    stop("stop_empty_config", lambda d: ((d / "stop_config.json").write_text("{}"), shutil.rmtree(d / "adapter")))
    stop("stop_no_adapter", lambda d: shutil.rmtree(d / "adapter"))
    stop("stop_truncated", lambda d: _truncate(d / "stop_head.safetensors", -10))
    stop("stop_truncated_adapter", lambda d: _truncate(d / "adapter" / "adapter_model.safetensors", 100))
    stop("stop_wrong_shape", lambda d: _edit_json(d / "stop_config.json", distinct_tokens=True))
    stop("stop_wrong_rank", lambda d: _edit_json(d / "adapter" / "adapter_config.json", r=8))
    out["judge_truncated"] = root / "judge_truncated"
    shutil.copytree(TESTBED_JUDGE, out["judge_truncated"])
    _truncate(out["judge_truncated"] / "judge_head.safetensors", 8)
    out["empty_dir"] = root / "empty_dir"
    out["empty_dir"].mkdir()
    out["labels_k4"] = root / "labels_k4.jsonl"  # two testbed prefixes, 4 rollouts each
    out["labels_k4"].write_text("".join(json.dumps({"problem_id": f"p{i}", "prefix_token_ids": [1, 5, 6 + i],
                                                    "soft_label": 0.5, "outcomes": [1, 0, 1, 0]}) + "\n"
                                        for i in range(2)))
    return out


CASES = [
    # usage errors: typer's own click classes, once a 35-line traceback
    (["nosuchcommand"], "No such command 'nosuchcommand'"),
    (["testbed", "nosuch"], "No such command 'nosuch'"),
    (["signals", "--nosuchflag"], "No such option: --nosuchflag"),
    (["train", "--labels", "X", "--out", "Y"], "Missing option '--val-labels'"),
    (["law", "recommend"], "Missing option '--budget'"),
    (["models", "prepare"], "Missing argument"),
    (["run"], "Missing option '--out'"),
    (["eval", "--out"], "Option '--out' requires an argument"),
    (["run", "--out", "o", "--n", "abc"], "Invalid value for '--n'"),
    (["serve", "--port", "x"], "Invalid value for '--port'"),
    # signals: built and their files checked even when nothing is pruned (default --schedule none)
    (["run", "--out", "o", "--signal", "stop:/nonexistent/dir"], "STOP checkpoint directory not found"),
    (["run", "--out", "o", "--signal", "stop:{stop_empty_config}"], "stop_config.json is empty"),
    (["run", "--out", "o", "--signal", "stop:{stop_no_adapter}", "--schedule", "12:4"],
     "adapter_config.json is missing"),
    (["run", "--out", "o", "--signal", "stop:{stop_truncated}"], "stop_head.safetensors: unreadable safetensors"),
    (["run", "--out", "o", "--signal", "stop:{stop_truncated_adapter}"],
     "adapter_model.safetensors: unreadable safetensors"),
    (["run", "--out", "o", "--signal", "stop:{stop_wrong_shape}"], "stop_embeddings has shape (1, 128), expected (4, 128)"),
    (["run", "--out", "o", "--signal", "stop:{stop_wrong_rank}"], "not of LoRA rank r=8"),
    (["run", "--out", "o", "--signal", "nosuch"], "unknown signal 'nosuch'"),
    (["eval", "--out", "o", "--signals", "random,nosuch"], "unknown signal 'nosuch'"),
    (["eval", "--out", "o", "--signals", "random,judge:{judge_truncated}"], "judge_head.safetensors: unreadable"),
    (["eval", "--out", "o", "--signals", "random,prm:{empty_dir}"], "is not a PRM directory (no config.json)"),
    (["eval", "--out", "o", "--signals", "random,random"], "signals given twice"),
    # impossible settings and empty selections
    (["eval", "--out", "o", "--prefix", "0"], "checkpoint lengths must be >= 1, got 0"),
    (["eval", "--out", "o", "--prefix", "400"], "checkpoint 400 must be below max_new_tokens=160"),
    (["eval", "--out", "o", "--keep", "17"], "keep k=17 is impossible with N=16"),
    (["eval", "--out", "o", "--levels", "99"], "no problems selected from the testbed's test split at levels 99"),
    (["run", "--out", "o", "--levels", "99"], "no problems selected from the testbed's test split at levels 99"),
    (["run", "--out", "o", "--limit", "0"], "--limit must be >= 1, got 0"),
    (["run", "--out", "o", "--schedule", "12:9", "--n", "4"], "k must be in [1, 4], got k=9"),
    (["label", "--out", "o", "--levels", "99"], "no problems selected from the testbed's train split"),
    (["run", "--out", "o", "--benchmark", "wordproblems:99"], "word-problem levels must lie in 1..5"),
    (["report", "{empty_dir}"], "is not an evaluation run directory"),
    (["train", "--labels", "nol", "--val-labels", "nol", "--out", "o"], "label file not found: nol"),
    (["train", "--labels", "{labels_k4}", "--val-labels", "{labels_k4}", "--out", "o", "--label-k", "0"],
     "label_k must be an integer >= 1"),
    (["train", "--labels", "{labels_k4}", "--val-labels", "{labels_k4}", "--out", "o", "--label-k", "8"],
     "label_k=8 needs 8 rollout outcomes per record; 2 of 2 records have fewer"),
    # serve: every option checked before binding (once three tracebacks for --port -1)
    (["serve", "--port", "-1"], "port must be in 0..65535, got -1"),
    (["serve", "--port", "70000"], "port must be in 0..65535, got 70000"),
    (["serve", "--host", "bad host"], "host must be an IP address or a host name"),
    (["serve", "--log-level", "loud"], "--log-level must be one of"),
    (["serve", "--stop", "{stop_truncated}"], "stop_head.safetensors: unreadable safetensors"),
    (["serve", "--signal", "stop:/nonexistent/dir"], "STOP checkpoint directory not found"),
]


SCRIPTED_TOO = {("nosuchcommand",), ("run", "--out", "o", "--signal", "stop:/nonexistent/dir"),
                ("eval", "--out", "o", "--prefix", "0")}
"""The first usage error, signal error and impossible setting: through the console script as well."""
assert SCRIPTED_TOO <= {tuple(args) for args, _ in CASES}


@pytest.mark.parametrize("i", range(len(CASES)), ids=[" ".join(a)[:60] for a, _ in CASES])
def test_bad_command_line_is_one_line_and_leaves_nothing(i, bad, tmp_path, capsys, monkeypatch):
    args = [a.format(**bad) for a in CASES[i][0]]

    def in_process(cwd: Path) -> tuple[int, str]:
        capsys.readouterr()
        with monkeypatch.context() as m:
            m.chdir(cwd)
            code = main(args)
        return code, capsys.readouterr().err

    def script(cwd: Path) -> tuple[int, str]:
        res = subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, cwd=cwd, timeout=300)
        return res.returncode, res.stderr

    if args[0] == "serve":  # only through the console script: a check gone missing would start a server here
        runs = [script]
    else:
        runs = [in_process] + ([script] if tuple(CASES[i][0]) in SCRIPTED_TOO else [])
    for run in runs:
        cwd = tmp_path / run.__name__
        cwd.mkdir()
        code, stderr = run(cwd)
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert code == 2, (run.__name__, stderr)
        assert "Traceback" not in stderr
        assert len(lines) == 1 and lines[0].startswith("error: ") and CASES[i][1] in lines[0], (run.__name__, stderr)
        assert not list(cwd.iterdir())  # no run directory, config or log left behind


def test_usage_error_names_the_command_and_its_help(tmp_path):
    res = subprocess.run([str(SCRIPT), "law", "recommend", "--budget", "1k"], capture_output=True, text=True,
                         cwd=tmp_path)
    assert res.returncode == 2
    assert res.stderr.strip() == ("error: Missing option '--prefix-tokens' / '--prefix'. (usage: pathprune law recommend [OPTIONS]; "
                                  "see 'pathprune law recommend --help')")
