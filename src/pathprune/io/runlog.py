"""Resumable run directories: per-path and per-problem JSONL logs plus a config guard.

Layout of a run directory::

    config.json      what was run (checked on resume: a different config is refused, unless the
                     directory holds no record yet, a failed start, which the new config replaces)
    paths.jsonl      one line per path (problem id, path index, scores, kept, answer, text, ...)
    problems.jsonl   one line per finished problem (vote, usage, times); written after its paths
    summary.json     aggregates, written atomically at the end

A killed run restarts where it stopped: problems present in ``problems.jsonl``
are skipped, path lines of unfinished problems and any torn last line are
dropped, so no record is lost or duplicated.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import PathpruneError
from .atomic import write_json_atomic, write_text_atomic


def is_failed_start(directory: str | Path) -> bool:
    """A run directory that holds a config but not one record: a start refused after its config was
    written (or killed before the first problem finished). Nothing in it is worth resuming."""
    directory = Path(directory)
    return directory.is_dir() and all(f.is_file() and (f.name == "config.json" or f.stat().st_size == 0)
                                      for f in directory.iterdir())


@contextmanager
def cleaned_on_failure(out_dir: str | Path) -> Iterator[None]:
    """Run a command's block; when it fails, remove ``out_dir`` again if the block created it and left
    it a failed start, so a corrected command meets no stale directory."""
    out = Path(out_dir)
    existed = out.exists()
    try:
        yield
    except BaseException:
        if not existed and is_failed_start(out):
            shutil.rmtree(out, ignore_errors=True)
        raise


def _read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a torn last line from a killed run
    return out


class RunLog:
    """Append-only logs of one run, safe to resume.

    ``items`` (e.g. paths, labelled prefixes) are written before the ``units``
    line (e.g. a problem) that marks them complete; ``key`` names the unit id.
    """

    def __init__(self, out_dir: str | Path, config: dict, items: str = "paths.jsonl",
                 units: str = "problems.jsonl", key: str = "problem_id") -> None:
        self.items_file, self.units_file, self.key = items, units, key
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        cfg_path = self.dir / "config.json"
        if cfg_path.exists():
            old, new = json.loads(cfg_path.read_text()), json.loads(json.dumps(config, default=str))
            if old != new and is_failed_start(self.dir):  # a failed start: the corrected config replaces it
                write_json_atomic(cfg_path, config)
            elif old != new:
                diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
                raise PathpruneError(f"{self.dir} holds a run with a different config ({', '.join(diff)}); "
                                     "use another --out")
        else:
            write_json_atomic(cfg_path, config)
        self.units = _read_jsonl(self.dir / units)
        done = {u[key] for u in self.units}
        items_rows = [r for r in _read_jsonl(self.dir / items) if r[key] in done]
        # rewrite both files clean (drops torn lines and items of unfinished units)
        for name, rows in ((items, items_rows), (units, self.units)):
            write_text_atomic(self.dir / name, "".join(json.dumps(r) + "\n" for r in rows))
        self.items = items_rows
        self.done = done

    def append(self, unit_row: dict, item_rows: list[dict]) -> None:
        """Write one finished unit: its items first, then the unit line that marks it done."""
        with open(self.dir / self.items_file, "a") as fh:
            fh.write("".join(json.dumps(r) + "\n" for r in item_rows))
            fh.flush()
            os.fsync(fh.fileno())
        with open(self.dir / self.units_file, "a") as fh:
            fh.write(json.dumps(unit_row) + "\n")
        self.items += item_rows
        self.units.append(unit_row)
        self.done.add(unit_row[self.key])
