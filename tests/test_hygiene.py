"""Repository hygiene: no tracked file names an absolute path of a machine, and `.venv` is ignored in any form."""

import re
import shutil
import subprocess

import pytest
from conftest import ROOT

# Home, scratch and workspace folders of the machines this project runs on; a path under one of them in a
# tracked file (an adapter's base model, a test's data folder) works only on the machine that wrote it.
MACHINE_PATH = re.compile(r"(?<![\w.~-])/(?:work|root|home|tmp|Users|mnt|scratch)/[\w.~/-]+")
ALLOWED: dict[str, str] = {}  # path -> why it may keep machine paths (none today)

pytestmark = pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(),
                                reason="needs a git checkout")


def _tracked() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [p for p in out.decode().split("\0") if p]


def machine_paths(text: str) -> list[str]:
    return [m.group(0) for m in MACHINE_PATH.finditer(text)]


def _abs(*parts: str) -> str:
    """An absolute path built from its parts, so this file itself names no machine path."""
    return "/" + "/".join(parts)


def test_the_pattern_finds_machine_paths_and_nothing_else():
    adapter = _abs("work", "main", "src", "pathprune", "testbed", "checkpoint")
    assert machine_paths(f'"base_model_name_or_path": "{adapter}"')
    home, users, out = _abs("home", "me", "x"), _abs("Users", "me", "y."), _abs("tmp", "serve.json")
    assert machine_paths(f"see {home} and {users}") == [home, users]
    assert machine_paths(f"--out {out}") == [out]
    not_paths = f'dir="/tmp" or runs/demo, ../shared/benchmarks, a{_abs("work", "b")}, https://x.org{_abs("home", "y")}'
    assert not machine_paths(not_paths)


def test_no_tracked_file_names_a_machine_path():
    offenders = []
    for rel in _tracked():
        path = ROOT / rel
        if rel in ALLOWED or not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:  # binary (weights, figures)
            continue
        found = machine_paths(data.decode("utf-8", errors="replace"))
        if found:
            offenders.append(f"{rel}: {', '.join(sorted(set(found)))}")
    assert not offenders, "absolute machine paths in tracked files:\n" + "\n".join(offenders)


def test_venv_is_ignored_as_a_folder_a_symlink_or_a_variant(tmp_path):
    shutil.copy(ROOT / ".gitignore", tmp_path / ".gitignore")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / ".venv").symlink_to(tmp_path / "elsewhere")  # make's VENV may point at a shared venv
    (tmp_path / ".venv-gpu").mkdir()
    (tmp_path / ".venv-gpu" / "pyvenv.cfg").write_text("home = x\n")
    (tmp_path / ".venv-cpu").symlink_to(tmp_path / "elsewhere")
    names = [".venv", ".venv-gpu", ".venv-cpu"]
    res = subprocess.run(["git", "check-ignore", *names], cwd=tmp_path, capture_output=True, text=True)
    assert sorted(res.stdout.split()) == sorted(names), res.stdout + res.stderr


def test_docs_links_resolve_and_docs_hold_no_run_reports():
    """Docs link only to files that exist; generated run reports live under runs/, only shown figures in docs/."""
    broken = []
    for md in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)\s]+)\)", md.read_text()):
            if "://" in target or target.startswith("#"):
                continue
            if not (md.parent / target.split("#")[0]).exists():
                broken.append(f"{md.relative_to(ROOT)} -> {target}")
    assert not broken, "broken links:\n" + "\n".join(broken)
    docs = [p for p in _tracked() if p.startswith("docs/")]
    reports = [p for p in docs if p.rsplit("/", 1)[-1] in ("report.md", "report.html", "summary.json")]
    assert not reports, f"generated run reports in docs/: {reports}"
    shown = "".join((ROOT / p).read_text() for p in docs if p.endswith(".md"))
    unshown = [p for p in docs if p.endswith(".png") and p.removeprefix("docs/") not in shown]
    assert not unshown, f"figures in docs/ that no doc shows: {unshown}"
