"""smollm2-135m-reasoner: listed, shipped as a small safetensors adapter, merged offline into the base GGUF, and a
real reasoner on held-out problems (far above the base model); the training command's resumability guards."""

import json
import time

import pytest
import torch

from pathprune.cli import main
from pathprune.engine import SamplingParams, encode_prompt, sample
from pathprune.errors import PathpruneError
from pathprune.models import EMBEDDED, load_model, resolve
from pathprune.models.merge import ADAPTERS_DIR, MARKER, check_adapter, is_merged
from pathprune.tasks.grading import grade
from pathprune.tasks.reasoner import suite

ADAPTER = ADAPTERS_DIR / "smollm2-135m-reasoner"


def test_registered_and_shipped_small_in_safetensors(capsys):
    m = EMBEDDED["smollm2-135m-reasoner"]
    assert m.base == "smollm2-135m" and m.adapter == "smollm2-135m-reasoner"
    files = {f.name for f in ADAPTER.iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", "training.json"} <= files
    assert not any(f.endswith((".bin", ".pt", ".pth", ".pkl")) for f in files)  # weights in safetensors only
    assert (ADAPTER / "adapter_model.safetensors").stat().st_size < 8_000_000
    config = json.loads((ADAPTER / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "smollm2-135m" and config["peft_type"] == "LORA"
    from safetensors import safe_open

    with safe_open(str(ADAPTER / "adapter_model.safetensors"), "pt") as fh:
        assert {fh.get_tensor(k).dtype for k in fh.keys()} == {torch.float16}
    assert main(["models", "list"]) == 0
    assert "smollm2-135m-reasoner" in capsys.readouterr().out


def test_a_damaged_adapter_gives_a_one_line_error(tmp_path):
    (tmp_path / "adapter_config.json").write_text("{}")
    with pytest.raises(PathpruneError, match="adapter_model.safetensors missing") as e:
        check_adapter(tmp_path)
    assert "\n" not in str(e.value)


def test_train_reasoner_refuses_another_recipe_in_the_same_folder(tmp_path):
    from pathprune.models.train_reasoner import ReasonerRecipe, _last_checkpoint, train

    (tmp_path / "recipe.json").write_text(json.dumps({"steps": 1}))
    with pytest.raises(PathpruneError, match="another recipe"):
        train(tmp_path, ReasonerRecipe(steps=2))
    for step, complete in ((20, True), (40, True), (60, False)):  # a checkpoint cut short is skipped on resume
        (tmp_path / "checkpoints" / f"checkpoint-{step}").mkdir(parents=True)
        if complete:
            (tmp_path / "checkpoints" / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    assert _last_checkpoint(tmp_path / "checkpoints").endswith("checkpoint-40")
    assert main(["models", "train-reasoner", "--out", str(tmp_path / "x"), "--levels", "9"]) == 2


@pytest.mark.slow
def test_prepared_offline_from_the_gguf_and_the_adapter(in_prepared_cache, capsys):
    folder, messages = in_prepared_cache  # what preparing it in an empty cache said
    path = resolve("smollm2-135m-reasoner")
    assert any("converting" in m for m in messages) and any("merging" in m for m in messages)
    assert folder in path.parents
    assert (path / "model.safetensors").is_file() and (path / MARKER).is_file() and is_merged(path.name, ADAPTER)
    t0, again = time.perf_counter(), []
    assert resolve("smollm2-135m-reasoner", progress=again.append) == path and not again  # cached
    assert time.perf_counter() - t0 < 2
    assert main(["models", "list"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "smollm2-135m-reasoner" in x)
    assert "ready" in line
    # the merged weights are the base plus the adapter
    from peft import PeftModel

    from pathprune.models.train_reasoner import ReasonerRecipe, examples, prompt_ids

    merged, tok = load_model("smollm2-135m-reasoner")
    # training saw each prompt exactly as inference encodes it, and the loss only on the worked solution
    problem = suite("train", 1, 0, levels=(2,))[0]
    assert prompt_ids(tok, problem.input) == encode_prompt(tok, problem.input)
    row = examples(ReasonerRecipe(levels=(2,), per_level=1), tok)[0]
    prompt = encode_prompt(tok, problem.input)
    assert row["input_ids"][:len(prompt)] == prompt and row["completion_mask"] == [0] * len(prompt) + [1] * (
        len(row["input_ids"]) - len(prompt))
    assert tok.decode(row["input_ids"][len(prompt):]) == problem.meta["solution"] + "<|im_end|>"
    base, _ = load_model("smollm2-135m")
    with_adapter = PeftModel.from_pretrained(base, str(ADAPTER)).eval()
    ids = torch.tensor([encode_prompt(tok, [{"role": "user", "content": "Anna has 17 marbles."}])])
    with torch.no_grad():
        a, b = merged(ids).logits, with_adapter(ids).logits
    assert torch.allclose(a, b, atol=2e-3), (a - b).abs().max()


@pytest.mark.slow
def test_the_reasoner_is_far_better_than_the_base_model(in_prepared_cache):
    """Greedy on 8 held-out test problems of levels 1-2 (about 20 s on one thread; the base model gets 0-1)."""
    problems = suite("test", 4, seed=1, levels=(1, 2))
    params = SamplingParams(n=1, temperature=0.0, max_new_tokens=64, seed=0)
    right, threads = {}, torch.get_num_threads()
    torch.set_num_threads(1)  # on a shared 2-core machine one thread decodes faster
    try:
        for name in ("smollm2-135m-reasoner", "smollm2-135m"):
            model, tok = load_model(name)
            outs = sample(model, tok, [encode_prompt(tok, p.input) for p in problems], params)
            right[name] = sum(grade(p, tok.decode(o[0], skip_special_tokens=True))[1] for p, o in zip(problems, outs))
    finally:
        torch.set_num_threads(threads)
    assert right["smollm2-135m-reasoner"] >= 6, right
    assert right["smollm2-135m-reasoner"] >= right["smollm2-135m"] + 4, right
