"""LoRA SFT of SmolLM2-135M-Instruct into a step-by-step reasoner, with TRL's ``SFTTrainer``, on CPU.

The data are train-split problems of :mod:`pathprune.tasks.reasoner` (mixed levels),
each a chat prompt exactly as pathprune encodes it at inference (the problem and
the ``final`` format's instruction through the model's chat template) and, as
the completion, the gold worked solution ending in ``Final answer: N`` and
``<|im_end|>``. The loss is on the completion only (a pre-tokenised dataset with
a ``completion_mask`` and ``completion_only_loss=True``). Training is resumable:
``OUT/checkpoints`` holds the Trainer's checkpoints and a rerun of the same
command continues from the last one. The result, ``OUT/adapter``, is the shipped
layout: ``adapter_model.safetensors`` (fp16), ``adapter_config.json`` (base
model ``smollm2-135m``, no machine path) and ``training.json`` (the recipe,
steps, loss and wall time).

    pathprune models train-reasoner --out runs/reasoner            # about an hour on 2 cores
    pathprune models train-reasoner --out runs/smoke --steps 3      # a smoke run
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import PathpruneError
from ..io.atomic import atomic_dir, write_json_atomic

BASE = "smollm2-135m"
IM_END = "<|im_end|>"


@dataclass(frozen=True)
class ReasonerRecipe:
    """Everything that decides the adapter (the defaults reproduce the shipped one)."""

    levels: tuple[int, ...] = (1, 2, 3, 4, 5, 6)
    per_level: int = 500
    """Train-split problems generated per level (the pool; ``steps * batch_size`` of them are seen)."""
    steps: int = 300
    batch_size: int = 4
    learning_rate: float = 1e-3
    warmup_steps: int = 10
    rank: int = 8
    alpha: int = 16
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    max_length: int = 512
    seed: int = 0
    save_steps: int = 20
    threads: int = 1
    """One thread: on 2 cores shared with other jobs, 2 threads ran a step 2x slower (OpenMP spin)."""
    data_seed: int = 0


def prompt_ids(tokenizer, messages) -> list[int]:
    """A problem's chat prompt as inference encodes it (``engine.request.encode_prompt``; a test pins the two)."""
    return list(tokenizer.apply_chat_template([dict(m) for m in messages], add_generation_prompt=True, tokenize=True,
                                              return_dict=False))


def sft_pool(recipe: ReasonerRecipe) -> list:
    """The train-split problems the SFT rows are drawn from (any of them may have been seen)."""
    from ..tasks.reasoner import suite

    return suite("train", recipe.per_level, recipe.data_seed, recipe.levels)


def sft_problem_ids(model: str) -> frozenset[str]:
    """Ids of the problems the embedded ``model`` was fine-tuned on: the pool of its shipped adapter's recipe
    (``training.json``); empty for a model pathprune did not fine-tune. Label and evaluation problems drawn from
    this pool would grade the model on solutions it memorised."""
    from .merge import ADAPTERS_DIR
    from .registry import EMBEDDED

    entry = EMBEDDED.get(model)
    record = ADAPTERS_DIR / entry.adapter / "training.json" if entry and entry.adapter else None
    if record is None or not record.is_file():
        return frozenset()
    raw = json.loads(record.read_text()).get("recipe", {})
    known = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()
             if k in ReasonerRecipe.__dataclass_fields__}
    return frozenset(p.id for p in sft_pool(ReasonerRecipe(**known)))


def examples(recipe: ReasonerRecipe, tokenizer) -> list[dict]:
    """Pre-tokenised training rows: ``input_ids``, ``completion_mask`` and ``length``, levels interleaved."""
    im_end = tokenizer.convert_tokens_to_ids(IM_END)
    rows = []
    for p in sft_pool(recipe):
        prompt = prompt_ids(tokenizer, p.input)
        completion = tokenizer(p.meta["solution"], add_special_tokens=False).input_ids + [im_end]
        ids = (prompt + completion)[:recipe.max_length]
        mask = ([0] * len(prompt) + [1] * len(completion))[:recipe.max_length]
        rows.append({"input_ids": ids, "completion_mask": mask, "length": len(ids)})
    return rows


def _last_checkpoint(folder: Path) -> str | None:
    found = sorted(folder.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1])) if folder.is_dir() else []
    done = [p for p in found if (p / "trainer_state.json").is_file()]
    return str(done[-1]) if done else None


def export_adapter(peft_model, out: Path, meta: dict) -> Path:
    """Write the adapter in the shipped layout: fp16 safetensors, a config naming the base by its registry name."""
    import torch
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    state = {k: v.detach().to(torch.float16).contiguous() for k, v in get_peft_model_state_dict(peft_model).items()}
    config = peft_model.peft_config["default"]
    cfg = config.to_dict()
    cfg["base_model_name_or_path"] = BASE
    for key, value in list(cfg.items()):
        if isinstance(value, set):
            cfg[key] = sorted(value)
    with atomic_dir(out) as tmp:
        save_file(state, str(tmp / "adapter_model.safetensors"), metadata={"format": "pt"})
        (tmp / "adapter_config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True, default=str) + "\n")
        (tmp / "training.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
    return out


def train(out: str | Path, recipe: ReasonerRecipe = ReasonerRecipe(), progress=print) -> Path:
    """Train (or resume) the reasoner adapter into ``out``; returns ``out/adapter``."""
    import torch

    try:
        from datasets import Dataset
        from peft import LoraConfig
        from transformers import TrainerCallback
        from trl import SFTConfig, SFTTrainer
    except ImportError as err:
        raise PathpruneError(f"training the reasoner needs TRL: pip install 'trl>=1.16' ({err})") from None
    from . import load_model

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    recipe_file = out / "recipe.json"
    mine = json.loads(json.dumps(asdict(recipe)))
    if recipe_file.is_file() and json.loads(recipe_file.read_text()) != mine:
        raise PathpruneError(f"{out} holds a run with another recipe ({recipe_file}); use a new --out")
    write_json_atomic(recipe_file, mine)
    torch.set_num_threads(recipe.threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    model, tokenizer = load_model(BASE, progress=progress)
    model.train()
    tokenizer.padding_side = "right"
    rows = examples(recipe, tokenizer)
    needed = recipe.steps * recipe.batch_size
    if len(rows) < needed:
        progress(f"note: {len(rows)} problems for {needed} training rows; some are seen twice")
    dataset = Dataset.from_list(rows)
    progress(f"{len(rows)} train problems (levels {','.join(map(str, recipe.levels))}), mean length "
             f"{sum(r['length'] for r in rows) / len(rows):.0f} tokens; {recipe.steps} steps of {recipe.batch_size}")

    log_file = out / "train_log.jsonl"
    timing_file = out / "timing.json"
    timing = json.loads(timing_file.read_text()) if timing_file.is_file() else {"segments": []}
    t0 = time.time()

    class Log(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                row = {"step": state.global_step, "loss": round(float(logs["loss"]), 4),
                       "lr": float(logs.get("learning_rate", 0.0)), "segment_s": round(time.time() - t0, 1)}
                with log_file.open("a") as fh:
                    fh.write(json.dumps(row) + "\n")
                progress(f"step {row['step']}/{recipe.steps}  loss {row['loss']:.4f}  lr {row['lr']:.2e}  "
                         f"{row['segment_s']:.0f} s this segment")

        def on_save(self, args, state, control, **kw):
            seg = {"start": t0, "seconds": round(time.time() - t0, 1), "at_step": state.global_step}
            write_json_atomic(timing_file, {"segments": timing["segments"] + [seg]})

    config = SFTConfig(
        output_dir=str(out / "checkpoints"), max_steps=recipe.steps, per_device_train_batch_size=recipe.batch_size,
        gradient_accumulation_steps=1, learning_rate=recipe.learning_rate, lr_scheduler_type="cosine",
        warmup_steps=recipe.warmup_steps, weight_decay=0.0, logging_steps=min(5, recipe.steps), save_steps=recipe.save_steps,
        save_total_limit=2, seed=recipe.seed, data_seed=recipe.data_seed, bf16=False, fp16=False, use_cpu=True,
        gradient_checkpointing=False, report_to="none", completion_only_loss=True, max_length=recipe.max_length,
        train_sampling_strategy="group_by_length", dataloader_num_workers=0, disable_tqdm=False,
        save_only_model=False,
    )
    peft = LoraConfig(r=recipe.rank, lora_alpha=recipe.alpha, lora_dropout=0.0,
                      target_modules=list(recipe.target_modules), task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer,
                         peft_config=peft, callbacks=[Log()])
    resume = _last_checkpoint(out / "checkpoints")
    if resume:
        progress(f"resuming from {Path(resume).name}")
    result = trainer.train(resume_from_checkpoint=resume)
    seconds = round(time.time() - t0, 1)
    timing["segments"].append({"start": t0, "seconds": seconds, "at_step": trainer.state.global_step})
    write_json_atomic(timing_file, timing)
    total = round(sum(s["seconds"] for s in _merge_segments(timing["segments"])), 1)
    losses = [json.loads(line) for line in log_file.read_text().splitlines()] if log_file.is_file() else []
    meta = {"base": BASE, "recipe": mine, "steps": trainer.state.global_step, "train_rows_seen":
            trainer.state.global_step * recipe.batch_size, "final_loss": losses[-1]["loss"] if losses else None,
            "first_loss": losses[0]["loss"] if losses else None, "train_loss": round(float(result.training_loss), 4),
            "wall_seconds": total, "torch_threads": recipe.threads, "trl": _version("trl"),
            "transformers": _version("transformers"), "peft": _version("peft"), "torch": torch.__version__}
    adapter = export_adapter(trainer.model, out / "adapter", meta)
    progress(f"adapter written to {adapter} ({total:.0f} s of training in all)")
    return adapter


def _merge_segments(segments: list[dict]) -> list[dict]:
    """One entry per process (a process saves several times; its last record counts)."""
    last: dict[float, dict] = {}
    for s in segments:
        last[s["start"]] = s
    return list(last.values())


def _version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None
