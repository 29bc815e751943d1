"""GGUF files: convert once (dequantised, fp32) to a cached safetensors directory.

Loading a GGUF through transformers dequantises every tensor (20 s for a 135M
model); the converted directory reloads in under a second. Writes go to a
temporary sibling directory that is renamed into place, so an interrupted
conversion never leaves a half-written model.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import PathpruneError
from ..io.atomic import atomic_dir
from .cache import cache_dir

MARKER = "pathprune_source.json"


def _fingerprint(path: Path) -> dict:
    st = path.stat()
    return {"file": path.name, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _check_magic(path: Path) -> None:
    with path.open("rb") as fh:
        if fh.read(4) != b"GGUF":
            raise PathpruneError(f"{path} is not a GGUF file (bad magic bytes)")


def converted_dir(path: Path, name: str | None = None) -> Path:
    """Cache directory for a GGUF file: the given name, else the file's stem and size."""
    stem = name or f"{path.stem}-{path.stat().st_size}"
    return cache_dir() / "gguf" / stem


def convert_gguf(path: str | Path, name: str | None = None, progress=None) -> Path:
    """Return a safetensors directory for ``path``, converting it on first use."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise PathpruneError(f"GGUF file not found: {path}")
    _check_magic(path)
    target = converted_dir(path, name)
    marker = target / MARKER
    if marker.is_file() and json.loads(marker.read_text()) == _fingerprint(path):
        return target
    if progress:
        progress(f"converting {path.name} to safetensors (once; cached in {target})")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    except Exception as err:  # the gguf reader raises many types on corrupt files
        raise PathpruneError(f"cannot read GGUF file {path}: {type(err).__name__}: {str(err).splitlines()[0][:200]}") from None
    # A GGUF-loaded model is flagged "quantized" and refuses save_pretrained,
    # although its weights are already dequantised (cpu-environment.md, P8).
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    with atomic_dir(target) as tmp:  # also clears what a killed conversion left
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / MARKER).write_text(json.dumps(_fingerprint(path)))
    return target
