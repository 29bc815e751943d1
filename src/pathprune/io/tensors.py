"""Checking safetensors files cheaply: names and shapes from the header, no tensor read."""

from __future__ import annotations

from pathlib import Path

from ..errors import PathpruneError


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
