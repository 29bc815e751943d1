"""STOP inside stock vLLM: the plugin's registration and the engine overrides that switch it on.

vLLM loads ``register`` in every engine process through the ``vllm.general_plugins`` entry point
(``pyproject.toml``); it registers one model class per supported architecture under
``PathpruneStop<Architecture>`` (by ``module:Class`` string, so nothing heavy is imported until an engine
asks for it). An engine built with :func:`overrides` runs that class (:mod:`pathprune.stop.vllm_model`),
which reads the STOP checkpoint and applies it only at ``[STOP]`` positions.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import PathpruneError

ARCHITECTURES = ("Qwen2ForCausalLM", "LlamaForCausalLM")
READ_IDS = (0, 1)
"""The logit rows a check request reads: row 0 carries the head's w . h, row 1 zero, every other row -inf,
so log p(0) - log p(1) = w . h exactly (the bias and any log-prob features are added by the signal)."""


def register() -> None:
    """The ``vllm.general_plugins`` entry point: make the STOP model classes known to vLLM."""
    from vllm import ModelRegistry

    for arch in ARCHITECTURES:
        name = f"PathpruneStop{arch}"
        if name not in ModelRegistry.get_supported_archs():
            ModelRegistry.register_model(name, f"pathprune.stop.vllm_model:Stop{arch}")


def stop_marker_id(tokenizer) -> int:
    """The input id that marks [STOP] positions: the tokenizer's ``[STOP]`` when it has one, else its
    highest special token that is not BOS, EOS or padding (the vLLM backend refuses prompts holding it).

    Any id works as the embedding there is STOP's learned one; it must only never occur in real text."""
    vocab = tokenizer.get_vocab()
    if "[STOP]" in vocab:
        return vocab["[STOP]"]
    taken = {tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id}
    free = sorted(set(tokenizer.all_special_ids) - taken)
    if not free:
        raise PathpruneError("this tokenizer has no [STOP] token and no spare special token to mark [STOP] "
                             "positions in vLLM")
    return free[-1]


def overrides(checkpoint: Path, model_dir: Path, tokenizer) -> dict:
    """vLLM ``hf_overrides`` that run STOP checkpoint ``checkpoint`` inside an engine for ``model_dir``;
    the checkpoint is checked whole and against the model's files first (one-line errors)."""
    from .checkpoint import check_stop
    from .config import fingerprint_files

    cfg = check_stop(checkpoint)
    actual = fingerprint_files(model_dir)
    diff = [k for k in cfg.base_fingerprint if cfg.base_fingerprint.get(k) != actual.get(k)]
    if diff:
        detail = ", ".join(f"{k} {cfg.base_fingerprint[k]} != {actual.get(k)}" for k in diff)
        raise PathpruneError(f"STOP checkpoint {checkpoint} was trained for another base model ({detail})")
    if actual["architecture"] not in ARCHITECTURES:
        raise PathpruneError(f"STOP inside vLLM supports {', '.join(ARCHITECTURES)}, not {actual['architecture']}")
    marker = stop_marker_id(tokenizer)
    return {"architectures": [f"PathpruneStop{actual['architecture']}"],
            "pathprune_stop": str(Path(checkpoint).resolve()),
            "pathprune_stop_token_id": marker,
            "pathprune_reserved_ids": [marker]}  # the vLLM backend refuses prompts holding it and never samples it
