"""The CLI end to end: --help everywhere, a real stats run to a JSON file, one-line errors."""

import json

import pytest
from conftest import cli

from pathprune.cli import main

COMMANDS = [[], ["demo"], ["run"], ["signals"], ["models"], ["models", "list"], ["models", "prepare"], ["testbed"],
            ["testbed", "train"], ["testbed", "stats"], ["testbed", "sample"]]


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c) or "root")
def test_help(cmd, capsys):
    assert main([*cmd, "--help"]) == 0
    assert "Usage" in capsys.readouterr().out


def test_stats_writes_json(tmp_path):
    out = tmp_path / "stats.json"
    res = cli("testbed", "stats", "--problems", "3", "--paths", "4", "--levels", "1,8", "--json", str(out))
    assert res.returncode == 0, res.stderr
    rows = json.loads(out.read_text())
    assert {(r["family"], r["difficulty"]) for r in rows} == {("chain", 1), ("chain", 8), ("list", 1), ("list", 8)}
    for r in rows:
        assert r["paths"] == 4 * r["problems"] and 0 <= r["pass_at_1"] <= 1
        assert r["all_right"] + r["all_wrong"] <= 1
    assert "pass@1" in res.stdout


def test_signals_lists_the_registry(capsys):
    assert main(["signals"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if "│" in line]
    assert any("jaccard" in r and " I " in r for r in rows)
    assert any("conf_lowest" in r and " III " in r for r in rows)


def test_models_list_and_sample():
    res = cli("models", "list")
    assert res.returncode == 0 and "testbed" in res.stdout and "ready" in res.stdout
    res = cli("testbed", "sample", "--family", "list", "--difficulty", "3", "--n", "3")
    assert res.returncode == 0 and res.stdout.count("S0") + res.stdout.count("S1") == 3


@pytest.mark.parametrize(
    "args, message",
    [
        (["testbed", "stats", "--levels", "x"], "levels must be comma-separated integers"),
        (["testbed", "stats", "--family", "sudoku"], "unknown testbed family"),
        (["testbed", "sample", "--difficulty", "99"], "difficulty for 'chain' must be in [1, 10], got 99"),
        (["models", "prepare", "/no/such/model"], "model not found"),
    ],
)
def test_errors_are_one_line(args, message, tmp_path):
    res = cli(*args, cwd=tmp_path)
    assert res.returncode == 2
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], res.stderr


def test_serve_checks_its_address_before_binding():
    """Host and port are checked when configured and bound once before the model loads (once a traceback)."""
    import socket

    from pathprune.errors import PathpruneError
    from pathprune.serving import ServerConfig

    with pytest.raises(PathpruneError, match="port must be in 0..65535, got -1"):
        ServerConfig(port=-1)
    with pytest.raises(PathpruneError, match="host must be an IP address or a host name"):
        ServerConfig(host="two words")
    ServerConfig(host="127.0.0.1", port=0).check_bind()  # a free port: nothing to say
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(PathpruneError, match=f"cannot bind 127.0.0.1:{busy.getsockname()[1]} "):
            ServerConfig(port=busy.getsockname()[1]).check_bind()
    with pytest.raises(PathpruneError, match="cannot resolve host 'no-such-host.invalid'"):
        ServerConfig(host="no-such-host.invalid").check_bind()


def test_usage_errors_in_process_are_one_line(capsys):
    """main() itself (not only the console script) turns typer's usage errors into one line and status 2."""
    assert main(["testbed", "stats", "--paths", "many"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: Invalid value for '--n' / '--paths'") and "\n" not in err
