"""One entry point that turns a name, a directory or a GGUF file into (model, tokenizer).

    >>> model, tokenizer = load_model("testbed")
    >>> model, tokenizer = load_model("/models/DeepSeek-R1-Distill-Qwen-1.5B")  # doctest: +SKIP
    >>> model, tokenizer = load_model("~/gguf/qwen2.5-0.5b-q8_0.gguf")         # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import PathpruneError
from .gguf import convert_gguf
from .registry import EMBEDDED


def resolve(spec: str | Path, progress=None) -> Path:
    """Name / directory / GGUF file → a Hugging Face directory on disk."""
    text = str(spec)
    if text in EMBEDDED:
        source = EMBEDDED[text].source()
        if EMBEDDED[text].base:
            from .merge import merge_adapter

            return merge_adapter(resolve(EMBEDDED[text].base, progress), source, text, progress=progress)
        return convert_gguf(source, name=text, progress=progress) if source.suffix == ".gguf" else source
    path = Path(text).expanduser()
    if not path.exists():
        known = ", ".join(sorted(EMBEDDED))
        raise PathpruneError(f"model not found: {text!r} is neither a path nor an embedded model ({known})")
    if path.is_file():
        if path.suffix.lower() == ".gguf":
            return convert_gguf(path, progress=progress)
        raise PathpruneError(f"{path} is a file but not a .gguf model; pass a model directory or a GGUF file")
    if not (path / "config.json").is_file():
        raise PathpruneError(f"{path} has no config.json; not a Hugging Face model directory")
    return path


def check_causal_lm(path: Path) -> None:
    try:
        config = json.loads((path / "config.json").read_text())
    except json.JSONDecodeError as err:
        raise PathpruneError(f"{path}/config.json is not valid JSON ({err.msg})") from None
    archs = config.get("architectures") or []
    if archs and not any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs):
        raise PathpruneError(f"{path} is not a causal LM (architectures: {', '.join(archs)})")


_GENERIC_TOKENIZERS = {"TokenizersBackend", "PreTrainedTokenizerFast"}


def load_tokenizer(path: Path):
    """The checkpoint's tokenizer.

    transformers 5 maps a generic ``tokenizer_class`` (TokenizersBackend) to the
    model type's own class (Qwen2Tokenizer for a qwen2 config), which rebuilds a
    byte-level BPE and silently drops words of a custom word-level vocabulary.
    A checkpoint that declares the generic class gets its tokenizer.json as is.
    """
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    cfg_file = path / "tokenizer_config.json"
    declared = json.loads(cfg_file.read_text()).get("tokenizer_class") if cfg_file.is_file() else None
    if declared in _GENERIC_TOKENIZERS and (path / "tokenizer.json").is_file():
        return PreTrainedTokenizerFast.from_pretrained(str(path))
    return AutoTokenizer.from_pretrained(str(path))


def load_model(spec: str | Path, *, dtype=None, device: str = "cpu", progress=None):
    """Load ``(model, tokenizer)`` in eval mode.

    Args:
        spec: an embedded name (``testbed``, ``smollm2-135m``, ``smollm2-135m-reasoner``), a local Hugging
            Face directory of any causal LM, or a ``.gguf`` file.
        dtype: torch dtype (default float32: bf16 is slower on CPUs without
            native bf16).
        device: where to put the model.
        progress: optional callable receiving one-line status messages.
    """
    import torch
    from transformers import AutoModelForCausalLM

    path = resolve(spec, progress=progress)
    check_causal_lm(path)
    try:
        tokenizer = load_tokenizer(path)
        model = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype or torch.float32)
    except OSError as err:
        raise PathpruneError(f"cannot load model from {path}: {str(err).splitlines()[0][:200]}") from None
    except ValueError as err:
        raise PathpruneError(f"{path} is not a loadable causal LM: {str(err).splitlines()[0][:200]}") from None
    except Exception as err:  # corrupt safetensors headers and the like
        raise PathpruneError(f"cannot load model from {path}: {type(err).__name__}: {str(err).splitlines()[0][:200]}") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token  # batched sampling needs a pad id; it is always masked
    tokenizer.padding_side = "left"
    model.to(device).eval()
    return model, tokenizer
