"""STOP: adapter isolation, cache-reuse exactness, save/load, base-model guard, official import, training."""

import json
import shutil

import pytest
import torch

from pathprune.engine import LiveBatch, Pruner, SamplingParams
from pathprune.errors import PathpruneError
from pathprune.models import load_model
from pathprune.stop import StopConfig, StopModule, import_official, load_stop, save_stop
from pathprune.testbed.model import new_testbed_model
from pathprune.testbed.problems import generate


def _fresh():
    return load_model("testbed")


def _randomise(module: StopModule, seed: int = 0):
    """Non-zero LoRA B, head and embedding, so that every part changes the score."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "lora_" in name or name.startswith("head") or name == "stop_embeddings":
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return module


def _paused(model, tok, n=3, length=12):
    problems = generate("chain", 8, 1, "test") + generate("list", 6, 1, "test")
    prompts = [tok(p.prompt).input_ids for p in problems]
    batch = LiveBatch.launch(model, prompts, n, tok.pad_token_id)
    batch.decode_until(length, SamplingParams(seed=1), eos=torch.tensor([tok.eos_token_id]),
                       banned=torch.tensor([4]))
    return prompts, batch


def test_adapter_never_touches_generation_and_cache_scores_equal_reencoding():
    model, tok = _fresh()
    ids = torch.tensor([tok("C 3 + 4 * 7 = S0 3 + 4 = 7 ;").input_ids])
    before = model(ids).logits
    module = _randomise(StopModule(model, StopConfig(n_stop=4, rank=4)))
    assert torch.equal(model(ids).logits, before)  # adapter is off outside the [STOP] pass
    prompts, batch = _paused(model, tok)
    keys = [layer.keys.clone() for layer in batch.cache.layers]
    cached = module.score_cached(batch)
    assert all(torch.equal(a, layer.keys) for a, layer in zip(keys, batch.cache.layers))
    assert batch.check_tokens == len(batch) * 4
    offline = module.score_ids([prompts[r.problem_index] + r.tokens for r in batch.records], tok.pad_token_id)
    torch.testing.assert_close(cached, offline, atol=1e-5, rtol=1e-5)
    assert cached.std() > 0 and torch.equal(model(ids).logits, before)
    with module.adapter_on():  # and the adapter really changes the model when on
        assert not torch.equal(model(ids).logits, before)


def test_save_load_identical_scores_and_guards(tmp_path):
    model, tok = _fresh()
    module = _randomise(StopModule(model, StopConfig(n_stop=3, rank=4, distinct_tokens=True)))
    prompts, batch = _paused(model, tok)
    scores = module.score_cached(batch)
    save_stop(module, tmp_path / "ckpt")
    assert {p.name for p in (tmp_path / "ckpt").iterdir()} == {"adapter", "stop_head.safetensors",
                                                                  "stop_config.json"}
    model2, _ = _fresh()
    loaded = load_stop(model2, tmp_path / "ckpt")
    _, batch2 = _paused(model2, tok)
    assert torch.equal(loaded.score_cached(batch2), scores)
    # the adapter is a standard PEFT adapter
    from peft import PeftModel

    peft_model = PeftModel.from_pretrained(_fresh()[0], str(tmp_path / "ckpt" / "adapter"))
    assert any("lora_" in n for n, _ in peft_model.named_parameters())
    with pytest.raises(PathpruneError, match="trained for another base model .*weights_sha256") as err:
        load_stop(new_testbed_model(seed=5), tmp_path / "ckpt")
    assert "\n" not in str(err.value)
    with pytest.raises(PathpruneError, match="not a STOP checkpoint"):
        load_stop(model2, tmp_path)


def test_official_layout_import_gives_identical_scores(tmp_path):
    model, tok = _fresh()
    module = _randomise(StopModule(model, StopConfig(n_stop=4, rank=4)))
    prompts, batch = _paused(model, tok)
    scores = module.score_cached(batch)
    official = tmp_path / "official"
    module.peft.save_pretrained(official / "adapter")
    w, b = module.head.weight.detach()[0], module.head.bias.detach()
    w0 = torch.randn_like(w)  # any 2-class head with w1 - w0 = w, b1 - b0 = b
    torch.save({"weight": torch.stack([w0, w0 + w]), "bias": torch.cat([b * 0 + 0.3, b + 0.3])},
               official / "classifier_head.pth")
    torch.save(module.stop_embeddings.detach()[0].clone(), official / "assess_token_embedding.pth")
    (official / "assess_token_config.json").write_text(json.dumps({"num_assess_tokens": 4}))
    model2, _ = _fresh()
    imported = load_stop(model2, import_official(model2, official, tmp_path / "converted"))
    _, batch2 = _paused(model2, tok)
    torch.testing.assert_close(imported.score_cached(batch2), scores, atol=1e-6, rtol=1e-5)
    shutil.rmtree(official / "adapter")
    (official / "classifier_head.pth").unlink()
    with pytest.raises(PathpruneError, match="missing classifier_head.pth"):
        import_official(model2, official, tmp_path / "x")


def test_no_adapter_ablation_and_stop_in_the_engine(tmp_path):
    model, tok = _fresh()
    module = _randomise(StopModule(model, StopConfig(n_stop=2, use_adapter=False)))
    assert module.peft is None and len(module.trainable_parameters()) == 3
    save_stop(module, tmp_path / "plain")
    model, tok = _fresh()
    full = _randomise(StopModule(model, StopConfig(n_stop=4, rank=4)))
    save_stop(full, tmp_path / "full")
    model, tok = _fresh()
    problems = generate("chain", 9, 2, "test")
    params = SamplingParams(n=6, temperature=1.0, max_new_tokens=160, seed=2)
    plain = Pruner(model, tok, "random", None, params).run(problems)
    checked = Pruner(model, tok, f"stop:{tmp_path / 'full'}", "14:6", params).run(problems)
    for a, b in zip(plain, checked):  # a k = N check with STOP changes no path
        assert [p.text for p in a.paths] == [p.text for p in b.paths] and b.usage.check == 6 * 4
    pruned = Pruner(model, tok, f"stop:{tmp_path / 'plain'}", "14:2", params).run(problems)
    assert all(sum(p.kept for p in r.paths) == 2 and r.usage.check == 6 * 2 for r in pruned)


def test_shipped_testbed_checkpoint_loads_and_scores():
    from pathprune.signals.stop_signal import TESTBED_STOP

    model, tok = _fresh()
    module = load_stop(model, TESTBED_STOP)
    _, batch = _paused(model, tok)
    scores = module.score_cached(batch)
    assert scores.shape == (len(batch),) and ((scores > 0) & (scores < 1)).all() and scores.std() > 0


def test_a_second_adapter_on_the_same_model_is_refused(tmp_path):
    from pathprune.signals import get_signal

    model, tok = _fresh()
    save_stop(_randomise(StopModule(model, StopConfig(n_stop=2, rank=4))), tmp_path / "other")
    model, tok = _fresh()
    _, batch = _paused(model, tok)
    first = get_signal("stop").module_for(model)
    assert get_signal("stop").module_for(model) is first  # loaded once, shared
    with pytest.raises(PathpruneError, match="already carries the STOP adapter"):
        get_signal(f"stop:{tmp_path / 'other'}").module_for(model)
