"""Atomic writes: a file or a whole directory appears complete or not at all (the one implementation).

Everything is first written to a hidden temporary sibling in the same directory (so the final
``os.replace`` never crosses a file system) and then moved into place; a reader, or a run killed
half-way, never sees a half-written file or checkpoint.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (fsynced before the rename)."""
    path = Path(path)
    # a unique sibling opened like any new file (mkstemp would make it, and so the result, private: 0600)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | Path, data) -> Path:
    """Write ``data`` as indented JSON to ``path`` atomically (values JSON cannot hold are written as str)."""
    return write_text_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


_DIR_TMP = ".{name}.{pid}.tmp"


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Fill the yielded temporary directory; on a clean exit it replaces ``path`` whole.

    On an exception nothing at ``path`` changes. Temporaries left by killed processes of this
    host are removed first (a live writer's are left alone), so a crash leaves no litter behind.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in out.parent.glob(_DIR_TMP.format(name=out.name, pid="*")):
        pid = stale.name[len(out.name) + 2:-len(".tmp")]
        if not pid.isdigit() or not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    tmp = out.with_name(_DIR_TMP.format(name=out.name, pid=os.getpid()))
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        if out.exists():  # os.replace cannot replace a non-empty directory
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True
