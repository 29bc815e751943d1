"""Save and load STOP checkpoints; import the official STOP layout.

A checkpoint is a directory::

    stop_config.json        StopConfig (incl. the base model's name and fingerprint), format version
    training.json           how it was trained: settings, record counts, validation metrics (optional)
    stop_head.safetensors   head weight/bias, the [STOP] embedding(s), feature_head.weight (with head_features)
    adapter/                a standard PEFT adapter (adapter_config.json + adapter_model.safetensors)

Loading onto a base model whose fingerprint differs is refused with a one-line
error naming what differs.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..errors import PathpruneError
from ..io.atomic import atomic_dir
from .config import TRAINING_FILE, StopConfig, fingerprint, model_name
from .module import StopModule, attach_adapter


def _write_head(directory: Path, weight, bias, embeddings, config: StopConfig, extra: dict,
                feature_weight=None) -> None:
    tensors = {"head.weight": weight, "head.bias": bias, "stop_embeddings": embeddings}
    if feature_weight is not None:
        tensors["feature_head.weight"] = feature_weight
    save_file({k: v.detach().float().contiguous() for k, v in tensors.items()}, directory / "stop_head.safetensors")
    (directory / "stop_config.json").write_text(json.dumps(config.to_json(), indent=2))
    if extra:  # the training record lives beside the config, never in it
        (directory / TRAINING_FILE).write_text(json.dumps(extra, indent=2))


def save_stop(module: StopModule, path: str | Path, extra: dict | None = None) -> Path:
    """Write ``module`` to ``path`` as a checkpoint directory (atomically); ``extra``, how it was
    trained, goes to ``training.json`` beside the config."""

    def fill(tmp: Path) -> None:
        if module.peft is not None:
            # PEFT records the base model's machine path (config and model card); name it instead
            machine = str(getattr(module.base.config, "_name_or_path", "") or "")
            name = module.config.base_model or model_name(machine)
            module.peft.peft_config[module.adapter_name].base_model_name_or_path = name or None
            # embeddings are never adapted; "auto" would look the named base model up on the Hub
            module.peft.save_pretrained(tmp / "adapter", selected_adapters=[module.adapter_name],
                                        save_embedding_layers=False)
            named = tmp / "adapter" / module.adapter_name  # PEFT puts a non-default adapter in a sub-folder
            if module.adapter_name != "default" and named.is_dir():
                for f in named.iterdir():
                    os.replace(f, tmp / "adapter" / f.name)
                named.rmdir()
            card = tmp / "adapter" / "README.md"
            if machine and name and card.is_file():
                card.write_text(card.read_text().replace(machine, name))
        _write_head(tmp, module.head.weight, module.head.bias, module.stop_embeddings, module.config, extra or {},
                    None if module.feature_head is None else module.feature_head.weight)

    with atomic_dir(path) as tmp:
        fill(tmp)
    return Path(path)


def _read_json(file: Path, what: str) -> dict:
    """A non-empty JSON object from ``file``; a one-line error naming the file otherwise."""
    if not file.is_file():
        raise PathpruneError(f"{file} is missing ({what})")
    try:
        raw = json.loads(file.read_text() or "null")
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise PathpruneError(f"{file} is not valid JSON ({getattr(err, 'msg', err)})") from None
    if not raw or not isinstance(raw, dict):
        raise PathpruneError(f"{file} is empty or not a JSON object ({what})")
    return raw


def read_config(path: Path) -> tuple[StopConfig, dict]:
    path = Path(path)
    if not path.is_dir():
        raise PathpruneError(f"STOP checkpoint directory not found: {path}")
    cfg_file = path / "stop_config.json"
    if not cfg_file.is_file():
        raise PathpruneError(f"{path} is not a STOP checkpoint (no stop_config.json)")
    raw = _read_json(cfg_file, "a STOP checkpoint's config")
    config = StopConfig.from_json(raw, cfg_file)  # version, unknown keys and values checked
    fp = raw.get("base_fingerprint")
    if not isinstance(fp, dict) or not isinstance(fp.get("hidden_size"), int):
        raise PathpruneError(f"{cfg_file}: no base_fingerprint with the base model's hidden_size")
    return config, raw


def check_stop(path: str | Path) -> StopConfig:
    """Check a STOP checkpoint directory as a whole without loading a model: its config, the head's
    tensors and shapes (safetensors header only) and, when it has one, the adapter's config and
    weights. Each problem is a one-line error naming the file."""
    from ..io.tensors import check_shapes, safetensors_shapes

    path = Path(path)
    cfg, raw = read_config(path)
    hidden = raw["base_fingerprint"]["hidden_size"]
    head = path / "stop_head.safetensors"
    expected = {"head.weight": (1, hidden), "head.bias": (1,),
                "stop_embeddings": (cfg.n_stop if cfg.distinct_tokens else 1, hidden)}
    if cfg.head_features:
        expected["feature_head.weight"] = (1, len(cfg.head_features))
    check_shapes(head, safetensors_shapes(head), expected)
    if cfg.use_adapter:
        lora = _read_json(path / "adapter" / "adapter_config.json", "the checkpoint's use_adapter is true")
        rank = lora.get("r")
        if not isinstance(rank, int) or rank < 1:
            raise PathpruneError(f"{path / 'adapter' / 'adapter_config.json'}: r must be a positive integer, "
                                 f"got {rank!r}")
        weights = path / "adapter" / "adapter_model.safetensors"
        if weights.exists() or not (path / "adapter" / "adapter_model.bin").is_file():
            shapes = safetensors_shapes(weights)
            if not any("lora_" in name for name in shapes):
                raise PathpruneError(f"{weights}: no LoRA weights")
            if not lora.get("rank_pattern"):  # per-module ranks would differ from r
                for name, shape in shapes.items():
                    got = shape[0] if "lora_A" in name else shape[-1] if "lora_B" in name else rank
                    if got != rank:
                        raise PathpruneError(f"{weights}: {name} has shape {shape}, not of LoRA rank r={rank}")
    return cfg


def check_fingerprint(model, expected: dict, where: Path) -> None:
    actual = fingerprint(model)
    diff = [k for k in expected if expected.get(k) != actual.get(k)]
    if diff:
        detail = ", ".join(f"{k} {expected[k]} != {actual.get(k)}" for k in diff)
        raise PathpruneError(f"STOP checkpoint {where} was trained for another base model ({detail})")


def load_stop(model, path: str | Path) -> StopModule:
    """Attach the STOP checkpoint at ``path`` to ``model`` (which must be its base model)."""
    path = Path(path)
    cfg = check_stop(path)  # every file checked before the model is touched
    check_fingerprint(model, cfg.base_fingerprint, path)
    use_adapter = cfg.use_adapter
    cfg.use_adapter = False
    module = StopModule(model, cfg)
    if use_adapter:
        module.peft, module.adapter_name = attach_adapter(model, path=path / "adapter")
        module.disable_adapter()
        cfg.use_adapter = True
    tensors = load_file(path / "stop_head.safetensors")
    with torch.no_grad():  # names and shapes checked by check_stop
        module.stop_embeddings.copy_(tensors["stop_embeddings"])
        module.head.weight.copy_(tensors["head.weight"])
        module.head.bias.copy_(tensors["head.bias"])
        if module.feature_head is not None:
            module.feature_head.weight.copy_(tensors["feature_head.weight"])
    return module.eval()


def import_official(model, path: str | Path, out: str | Path) -> Path:
    """Convert the official STOP layout (``adapter/``, ``classifier_head.pth``,
    ``assess_token_embedding.pth``, ``assess_token_config.json``) into a pathprune checkpoint.

    The official head is ``Linear(hidden, 2)`` under a softmax; p(success) = softmax(...)[1]
    = sigmoid((w1 - w0) . h + (b1 - b0)), so it converts exactly to our scalar head.
    Pickled tensors are read with ``torch.load(weights_only=True)``: no code runs.
    """
    path = Path(path)
    for name in ("classifier_head.pth", "assess_token_embedding.pth", "assess_token_config.json"):
        if not (path / name).is_file():
            raise PathpruneError(f"{path} is not an official STOP checkpoint (missing {name})")
    meta = json.loads((path / "assess_token_config.json").read_text())
    head = torch.load(path / "classifier_head.pth", weights_only=True, map_location="cpu")
    emb = torch.load(path / "assess_token_embedding.pth", weights_only=True, map_location="cpu")
    if isinstance(emb, dict):
        emb = next(iter(emb.values()))
    weight, bias = head["weight"], head["bias"]
    if weight.shape[0] != 2 or weight.shape[1] != model.config.hidden_size:
        raise PathpruneError(f"{path}: classifier head has shape {tuple(weight.shape)}, "
                             f"expected (2, {model.config.hidden_size})")
    adapter = path / "adapter"
    cfg = StopConfig(n_stop=int(meta.get("num_assess_tokens", 4)), use_adapter=adapter.is_dir(),
                     base_fingerprint=fingerprint(model), base_model=model_name(model.config._name_or_path or ""))
    if cfg.use_adapter:
        lora = json.loads((adapter / "adapter_config.json").read_text())
        cfg.rank, cfg.alpha = int(lora["r"]), int(lora["lora_alpha"])
        cfg.target_modules = lora.get("target_modules") or cfg.target_modules

    def fill(tmp: Path) -> None:
        if cfg.use_adapter:  # a PEFT adapter already: copied as is, nothing attached to the caller's model
            shutil.copytree(adapter, tmp / "adapter")
        _write_head(tmp, (weight[1] - weight[0])[None], (bias[1] - bias[0]).reshape(1), emb.reshape(1, -1), cfg,
                    {"imported_from": str(path)})

    with atomic_dir(out) as tmp:
        fill(tmp)
    return Path(out)
