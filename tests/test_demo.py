"""The main job runs: ``pathprune demo`` through the console script, as a user types it (the README's first
command, at settings small enough for a test), and the evaluation entry point it shares with ``eval`` called
with only its required arguments (no typer ``OptionInfo`` ever reaches library code)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from conftest import cli

SRC = Path(__file__).resolve().parent.parent / "src" / "pathprune"
SMALL = ["--per-level", "1", "--n", "4", "--keep", "2", "--prefix-tokens", "8",
         "--signals", "random,mean_logprob,stop"]


def test_demo_runs_through_the_console_script(tmp_path):
    out = tmp_path / "demo"
    proc = cli("demo", "--out", str(out), *SMALL, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = [line for line in proc.stdout.splitlines() if line.startswith("│")]
    for row in ("no pruning", "random @8:2", "mean_logprob", "stop @8:2"):
        assert any(row in line for line in table), f"no {row!r} row in the demo's table:\n{proc.stdout}"
    assert "N=4 → k=2 at L=8 tokens (4 problems" in proc.stdout  # 2 families × levels 6, 8 × 1 problem
    for name in ("report.md", "report.html", "summary.json", "paths.jsonl", "problems.jsonl"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    labels = {r["label"] for r in summary["rows"]}
    assert {"random @8:2", "mean_logprob @8:2", "stop @8:2"} <= labels
    assert summary["config"]["n"] == 4 and summary["config"]["signals"] == ["random", "mean_logprob", "stop"]
    assert len((out / "paths.jsonl").read_text().splitlines()) == 4 * 4  # every launched path logged once
    # the same command again resumes the finished run: nothing is sampled twice, the table is rebuilt
    again = cli("demo", "--out", str(out), *SMALL, timeout=600)
    assert again.returncode == 0 and len((out / "paths.jsonl").read_text().splitlines()) == 16


def test_evaluate_runs_with_only_its_required_arguments(tmp_path):
    """The shared entry point's defaults are real values: a run at those defaults on one problem."""
    from pathprune.cli.evaluate import EVAL_SIGNALS, evaluate
    from pathprune.evaluation.sources import load_problems

    problems = load_problems(None, "test", "8", 1, 1)
    report = evaluate(tmp_path / "run", problems)
    assert report.config.n == 16 and report.config.signals == list(EVAL_SIGNALS)
    assert report.config.prefixes == [16] and report.config.keeps == [4]
    labels = [r["label"] for r in report.rows]
    assert labels[0] == "no pruning" and {f"{s} @16:4" for s in EVAL_SIGNALS} <= set(labels)
    assert (tmp_path / "run" / "report.md").read_text() == report.markdown


def _command_callbacks():
    """``(module, function name)`` of every command the ``pathprune`` app registers, groups included."""
    from pathprune.cli import app

    found, apps = set(), [app]
    while apps:
        current = apps.pop()
        for command in current.registered_commands:
            found.add((command.callback.__module__, command.callback.__name__))
        apps += [group.typer_instance for group in current.registered_groups]
    return found


def test_no_code_calls_a_command_function():
    """A command function's defaults are typer objects, so only the app may hold it: nothing else imports one
    (the demo once called ``eval_`` directly and crashed on ``--backend``'s ``OptionInfo``)."""
    callbacks = _command_callbacks()
    assert len(callbacks) >= 15  # demo, run, eval, report, signals, label, train, serve, rl, models, testbed, law
    offenders = []
    for path in SRC.rglob("*.py"):
        package = ".".join(path.relative_to(SRC.parent).with_suffix("").parts[:-1])
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom):
                continue
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                if (module, alias.name) in callbacks and path != SRC / "cli" / "__init__.py":
                    offenders.append(f"{path.relative_to(SRC)} imports the command {module}.{alias.name}")
    assert not offenders, offenders


def _imported_packages(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names.add((node.module or "").split(".")[0])
    return names


def test_library_code_never_imports_typer():
    """typer lives in the CLI layer only, so no library function can receive a typer default."""
    users = [str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
             if p.relative_to(SRC).parts[0] != "cli" and "typer" in _imported_packages(p)]
    assert not users, users
