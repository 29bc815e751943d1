"""Checking safetensors files cheaply: names and shapes from the header, no tensor read."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import PathpruneError


def safetensors_files(path: Path) -> list[Path]:
    """The weight files of a model directory: the shards its index lists, else every ``*.safetensors``;
    pickled weights are refused (loading them could run code)."""
    index = path / "model.safetensors.index.json"
    if index.is_file():
        try:
            names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (json.JSONDecodeError, KeyError, AttributeError):
            raise PathpruneError(f"{index} is not a valid safetensors index") from None
        files = [path / n for n in names]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise PathpruneError(f"{path}: shard(s) listed in the index are missing: {', '.join(missing[:3])}")
        return files
    files = sorted(path.glob("*.safetensors"))
    if not files:
        pickled = [p.name for p in path.glob("*.bin")] + [p.name for p in path.glob("*.pt*")]
        what = f" (found pickled {pickled[0]}; only safetensors weights are loaded)" if pickled else ""
        raise PathpruneError(f"{path}: no safetensors weights{what}")
    return files


def safetensors_shapes(file: str | Path) -> dict[str, tuple[int, ...]]:
    """``{name: shape}`` of a safetensors file, read from its header only (a multi-GB file costs
    microseconds). A missing, unreadable, truncated or padded file is a one-line error naming it:
    safetensors refuses a file whose data does not exactly cover the header's offsets."""
    from safetensors import SafetensorError, safe_open

    file = Path(file)
    if not file.is_file():
        raise PathpruneError(f"{file} is missing")
    try:
        with safe_open(str(file), framework="numpy") as f:
            return {name: tuple(f.get_slice(name).get_shape()) for name in f.keys()}
    except (SafetensorError, OSError) as err:
        reason = str(err).splitlines()[0].removeprefix("Error while deserializing header: ")
        raise PathpruneError(f"{file}: unreadable safetensors file ({reason})") from None


def check_shapes(file: str | Path, shapes: dict[str, tuple[int, ...]], expected: dict[str, tuple[int, ...]]) -> None:
    """Every ``expected`` tensor present in ``shapes`` (from ``file``) with its shape; a one-line error otherwise."""
    for name, want in expected.items():
        if name not in shapes:
            raise PathpruneError(f"{file}: no tensor {name!r} (holds {', '.join(sorted(shapes)) or 'none'})")
        if tuple(shapes[name]) != tuple(want):
            raise PathpruneError(f"{file}: {name} has shape {tuple(shapes[name])}, expected {tuple(want)}")
