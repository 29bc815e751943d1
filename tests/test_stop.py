"""STOP: adapter isolation, cache-reuse exactness, save/load, base-model guard, official import, training."""

import json
import shutil

import pytest
import torch

from pathprune.engine import LiveBatch, SamplingParams
from pathprune.errors import PathpruneError
from pathprune.stop import StopConfig, StopModule, import_official, load_stop, save_stop
from pathprune.stop.module import encode_prefixes
from pathprune.testbed.model import new_testbed_model
from pathprune.testbed.problems import generate
from conftest import load_testbed, paused_batch, run_pruner


def _randomise(module: StopModule, seed: int = 0):
    """Non-zero LoRA B, head and embedding, so that every part changes the score."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "lora_" in name or name.startswith("head") or name == "stop_embeddings":
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return module


def test_adapter_never_touches_generation_and_cache_scores_equal_reencoding():
    model, tok = load_testbed()
    ids = torch.tensor([tok("C 3 + 4 * 7 = S0 3 + 4 = 7 ;").input_ids])
    before = model(ids).logits
    module = _randomise(StopModule(model, StopConfig(n_stop=4, rank=4)))
    assert torch.equal(model(ids).logits, before)  # adapter is off outside the [STOP] pass
    _, prompts, batch = paused_batch(model, tok)
    keys = [layer.keys.clone() for layer in batch.cache.layers]
    cached = module.score_cached(batch)
    assert all(torch.equal(a, layer.keys) for a, layer in zip(keys, batch.cache.layers))
    assert batch.check_tokens == len(batch) * 4
    offline = module.score_ids([prompts[r.problem_index] + r.tokens for r in batch.records], tok.pad_token_id)
    torch.testing.assert_close(cached, offline, atol=1e-5, rtol=1e-5)
    assert cached.std() > 0 and torch.equal(model(ids).logits, before)
    with module.adapter_on():  # and the adapter really changes the model when on
        assert not torch.equal(model(ids).logits, before)


def test_prefix_cache_computed_once_and_regrouped_equals_reencoding():
    """Training encodes each prefix once (split into one-row batches) and stacks any subset per step:
    the same logits as re-encoding that subset, whatever its order and padding."""
    model, tok = load_testbed()
    module = _randomise(StopModule(model, StopConfig(n_stop=3, rank=4)))
    _, prompts, batch = paused_batch(model, tok)
    prefixes = [prompts[r.problem_index] + r.tokens for r in batch.records]
    prefixes += [prompts[0] + batch.records[0].tokens[:5], prompts[1]]  # other lengths: more padding
    assert len({len(p) for p in prefixes}) >= 3
    cache = encode_prefixes(module.base, prefixes, tok.pad_token_id, batch_size=4)
    assert [int(c.mask.sum()) for c in cache] == [len(p) for p in prefixes] and all(c.mask.all() for c in cache)
    for idx in ([7, 0, 3, 6], [1], list(range(len(prefixes)))[::-1]):
        stacked = LiveBatch.stack([cache[i] for i in idx])
        torch.testing.assert_close(module.logits_cached(stacked),
                                   module.logits_ids([prefixes[i] for i in idx], tok.pad_token_id),
                                   atol=1e-5, rtol=1e-5)
    # the one-row batches are not consumed: the probe restored them
    again = module.logits_cached(LiveBatch.stack(cache[:2]))
    torch.testing.assert_close(again, module.logits_ids(prefixes[:2], tok.pad_token_id), atol=1e-5, rtol=1e-5)


def test_save_load_identical_scores_and_guards(tmp_path):
    model, tok = load_testbed()
    module = _randomise(StopModule(model, StopConfig(n_stop=3, rank=4, distinct_tokens=True)))
    _, prompts, batch = paused_batch(model, tok)
    scores = module.score_cached(batch)
    save_stop(module, tmp_path / "ckpt")
    assert {p.name for p in (tmp_path / "ckpt").iterdir()} == {"adapter", "stop_head.safetensors",
                                                                  "stop_config.json"}
    model2, _ = load_testbed()
    loaded = load_stop(model2, tmp_path / "ckpt")
    *_, batch2 = paused_batch(model2, tok)
    assert torch.equal(loaded.score_cached(batch2), scores)
    # the adapter is a standard PEFT adapter
    from peft import PeftModel

    peft_model = PeftModel.from_pretrained(load_testbed()[0], str(tmp_path / "ckpt" / "adapter"))
    assert any("lora_" in n for n, _ in peft_model.named_parameters())
    with pytest.raises(PathpruneError, match="trained for another base model .*weights_sha256") as err:
        load_stop(new_testbed_model(seed=5), tmp_path / "ckpt")
    assert "\n" not in str(err.value)
    with pytest.raises(PathpruneError, match="not a STOP checkpoint"):
        load_stop(model2, tmp_path)


def test_official_layout_import_gives_identical_scores(tmp_path):
    model, tok = load_testbed()
    module = _randomise(StopModule(model, StopConfig(n_stop=4, rank=4)))
    _, prompts, batch = paused_batch(model, tok)
    scores = module.score_cached(batch)
    official = tmp_path / "official"
    module.peft.save_pretrained(official / "adapter")
    w, b = module.head.weight.detach()[0], module.head.bias.detach()
    w0 = torch.randn_like(w)  # any 2-class head with w1 - w0 = w, b1 - b0 = b
    torch.save({"weight": torch.stack([w0, w0 + w]), "bias": torch.cat([b * 0 + 0.3, b + 0.3])},
               official / "classifier_head.pth")
    torch.save(module.stop_embeddings.detach()[0].clone(), official / "assess_token_embedding.pth")
    (official / "assess_token_config.json").write_text(json.dumps({"num_assess_tokens": 4}))
    model2, _ = load_testbed()
    imported = load_stop(model2, import_official(model2, official, tmp_path / "converted"))
    *_, batch2 = paused_batch(model2, tok)
    torch.testing.assert_close(imported.score_cached(batch2), scores, atol=1e-6, rtol=1e-5)
    shutil.rmtree(official / "adapter")
    (official / "classifier_head.pth").unlink()
    with pytest.raises(PathpruneError, match="missing classifier_head.pth"):
        import_official(model2, official, tmp_path / "x")


def test_no_adapter_ablation_and_stop_in_the_engine(tmp_path):
    model, tok = load_testbed()
    module = _randomise(StopModule(model, StopConfig(n_stop=2, use_adapter=False)))
    assert module.peft is None and len(module.trainable_parameters()) == 3
    save_stop(module, tmp_path / "plain")
    model, tok = load_testbed()
    full = _randomise(StopModule(model, StopConfig(n_stop=4, rank=4)))
    save_stop(full, tmp_path / "full")
    model, tok = load_testbed()
    problems = generate("chain", 9, 2, "test")
    params = SamplingParams(n=6, temperature=1.0, max_new_tokens=160, seed=2)
    plain = run_pruner(problems, model, tok, "random", None, params)
    checked = run_pruner(problems, model, tok, f"stop:{tmp_path / 'full'}", "14:6", params)
    for a, b in zip(plain, checked):  # a k = N check with STOP changes no path
        assert [p.text for p in a.paths] == [p.text for p in b.paths] and b.usage.check == 6 * 4
    pruned = run_pruner(problems, model, tok, f"stop:{tmp_path / 'plain'}", "14:2", params)
    assert all(sum(p.kept for p in r.paths) == 2 and r.usage.check == 6 * 2 for r in pruned)


def test_shipped_testbed_checkpoint_loads_and_scores():
    from pathprune.signals.stop_signal import TESTBED_STOP

    model, tok = load_testbed()
    module = load_stop(model, TESTBED_STOP)
    *_, batch = paused_batch(model, tok)
    scores = module.score_cached(batch)
    assert scores.shape == (len(batch),) and ((scores > 0) & (scores < 1)).all() and scores.std() > 0


def test_two_checkpoints_share_one_model_each_with_its_own_adapter(tmp_path):
    from pathprune.signals import get_signal

    for name, seed in (("a", 1), ("b", 2)):
        model, _ = load_testbed()
        save_stop(_randomise(StopModule(model, StopConfig(n_stop=2, rank=4)), seed), tmp_path / name)
    alone = {}
    for name in "ab":
        model, tok = load_testbed()
        *_, batch = paused_batch(model, tok)
        alone[name] = load_stop(model, tmp_path / name).score_cached(batch)
    assert not torch.allclose(alone["a"], alone["b"])
    model, tok = load_testbed()
    ids = torch.tensor([tok("C 3 + 4 * 7 = S0 3 + 4 = 7 ;").input_ids])
    before = model(ids).logits
    *_, batch = paused_batch(model, tok)
    a, b = (get_signal(f"stop:{tmp_path / n}").module_for(model) for n in "ab")
    assert get_signal(f"stop:{tmp_path / 'a'}").module_for(model) is a  # loaded once, shared
    assert (a.adapter_name, b.adapter_name) == ("default", "stop1")
    for _ in range(2):  # alternating: each activates only its own adapter
        torch.testing.assert_close(a.score_cached(batch), alone["a"], atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(b.score_cached(batch), alone["b"], atol=1e-6, rtol=1e-5)
    assert torch.equal(model(ids).logits, before)
    save_stop(b, tmp_path / "b2")  # a named adapter is saved in the standard layout
    assert (tmp_path / "b2" / "adapter" / "adapter_config.json").is_file()
    model, tok = load_testbed()
    *_, batch = paused_batch(model, tok)
    torch.testing.assert_close(load_stop(model, tmp_path / "b2").score_cached(batch), alone["b"], atol=1e-6, rtol=1e-5)


def test_head_features_read_the_prefix_logprobs_exactly(tmp_path):
    """Our extension: logit = head(h) + w . standardised(mean, min log-prob of the generated tokens)."""
    from pathprune.engine.backend import suppressed_ids
    from pathprune.stop.evaluate import prefix_logprobs

    model, tok = load_testbed()
    cfg = StopConfig(n_stop=2, rank=4, head_features=["mean_logprob", "min_logprob"],
                     feature_mean=[-0.4, -2.0], feature_std=[0.3, 1.5])
    module = _randomise(StopModule(model, cfg))
    with torch.no_grad():
        module.feature_head.weight.copy_(torch.tensor([[0.8, -0.5]]))
    problems = generate("chain", 8, 2, "test") + generate("list", 6, 2, "test")
    prompts = [tok(p.prompt).input_ids for p in problems]
    batch = LiveBatch.launch(model, prompts, 3, tok.pad_token_id)
    batch.decode_until(14, SamplingParams(seed=3), eos=torch.tensor([tok.eos_token_id]),
                       banned=torch.tensor(suppressed_ids(model, tok), dtype=torch.long))
    cached = module.logits_cached(batch).detach()
    by_hand = []
    for r in batch.records:
        mean, low = sum(r.logprobs) / len(r.logprobs), min(r.logprobs)
        by_hand.append(0.8 * (mean + 0.4) / 0.3 - 0.5 * (low + 2.0) / 1.5)
    with torch.no_grad():
        module.feature_head.weight.zero_()
        no_features = module.logits_cached(batch)
        module.feature_head.weight.copy_(torch.tensor([[0.8, -0.5]]))
    torch.testing.assert_close(cached - no_features, torch.tensor(by_hand), atol=1e-5, rtol=1e-5)
    assert torch.tensor(by_hand).std() > 0
    # offline: the re-encoded prefix gives the same log-probabilities, hence the same scores
    records = [{"prefix_token_ids": prompts[r.problem_index] + r.tokens, "prompt_len": len(prompts[r.problem_index])}
               for r in batch.records]
    ids = [r["prefix_token_ids"] for r in records]
    offline = module.score_ids(ids, tok.pad_token_id, logprobs=prefix_logprobs(model, tok, records))
    torch.testing.assert_close(offline, torch.sigmoid(cached), atol=1e-5, rtol=1e-5)
    with pytest.raises(PathpruneError, match="reads mean_logprob, min_logprob of the generated tokens"):
        module.score_ids(ids, tok.pad_token_id)
    save_stop(module, tmp_path / "lp")
    model2, _ = load_testbed()
    loaded = load_stop(model2, tmp_path / "lp")
    assert loaded.config.feature_std == [0.3, 1.5]
    torch.testing.assert_close(loaded.score_ids(ids, tok.pad_token_id, logprobs=prefix_logprobs(model2, tok, records)),
                               torch.sigmoid(cached), atol=1e-6, rtol=1e-5)
    with pytest.raises(PathpruneError, match="head_features must be distinct names from mean_logprob, min_logprob"):
        StopConfig(head_features=["entropy"])


def test_shipped_stop_lp_checkpoint_reads_mean_logprob():
    from pathprune.signals import get_signal

    model, tok = load_testbed()
    module = get_signal("stop_lp").module_for(model)
    assert module.config.head_features == ["mean_logprob"] and module.feature_head.weight.item() > 0
    problems = generate("chain", 9, 2, "test")
    params = SamplingParams(n=6, temperature=1.0, max_new_tokens=160, seed=2)
    result = run_pruner(problems, model, tok, "stop_lp", "16:2", params)
    assert all(sum(p.kept for p in r.paths) == 2 and r.usage.check == 6 * 4 for r in result)
