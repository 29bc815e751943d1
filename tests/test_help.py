"""Every command and sub-command answers ``--help`` with its usage and exit status 0."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from pathprune.cli import app


def command_paths(command=None, prefix=()) -> list[tuple[str, ...]]:
    """Every leaf command of the CLI as its argv words, walked from the click tree."""
    command = command or typer.main.get_command(app)
    subs = getattr(command, "commands", None)
    if not subs:
        return [prefix]
    return [path for name, sub in sorted(subs.items()) for path in command_paths(sub, (*prefix, name))]


PATHS = command_paths()


def test_the_walk_finds_every_command():
    names = {" ".join(p) for p in PATHS}
    assert {"demo", "run", "eval", "report", "label", "train", "serve", "signals", "law recommend",
            "models list", "testbed stats"} <= names


@pytest.mark.parametrize("argv", PATHS, ids=[" ".join(p) for p in PATHS])
def test_help(argv):
    result = CliRunner().invoke(app, [*argv, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output and " ".join(argv) in " ".join(result.output.split())
    assert "Traceback" not in result.output
