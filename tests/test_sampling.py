"""The batched sampler: exactness against generate, padding, EOS, seeds, validation."""

import pytest
import torch

from pathprune.engine.loop import sample
from pathprune.engine.sampling import SamplingParams, choose_tokens, mix64, path_keys, path_uniforms
from pathprune.errors import PathpruneError
from pathprune.testbed.model import new_testbed_model
from pathprune.testbed.problems import generate
from pathprune.testbed.tokenizer import VOCAB, build_tokenizer

STOP = VOCAB.index("[STOP]")


def test_greedy_batch_equals_unpadded_generate(testbed):
    model, tok = testbed
    problems = generate("chain", 2, 1, "test") + generate("list", 7, 1, "test") + generate("chain", 9, 1, "test")
    prompts = [tok(p.prompt).input_ids for p in problems]
    assert len({len(p) for p in prompts}) == 3  # really different lengths, so left padding is exercised
    paths = sample(model, tok, prompts, SamplingParams(n=2, temperature=0, max_new_tokens=120))
    for prompt, (a, b) in zip(prompts, paths):
        ref = model.generate(torch.tensor([prompt]), do_sample=False, max_new_tokens=120)[0, len(prompt):].tolist()
        assert a == b == ref
        assert a[-1] == tok.eos_token_id  # ended at EOS, nothing sampled after it


def test_seeds(testbed):
    model, tok = testbed
    prompt = [tok(generate("chain", 8, 1, "test")[0].prompt).input_ids]
    run = lambda seed: sample(model, tok, prompt, SamplingParams(n=8, temperature=1.0, max_new_tokens=100, seed=seed))
    assert run(1) == run(1)
    assert run(1) != run(2)


def test_stop_token_is_never_sampled():
    """On an untrained model (near-uniform next-token distribution) [STOP] would be drawn
    about once every 40 tokens if the sampler did not suppress it."""
    model, tok = new_testbed_model(seed=1).eval(), build_tokenizer()
    paths = sample(model, tok, [tok("C 1 + 2 =").input_ids], SamplingParams(n=64, temperature=3.0, max_new_tokens=40))
    drawn = {t for p in paths[0] for t in p}
    assert STOP not in drawn and tok.pad_token_id not in drawn
    assert len(drawn) > 20  # the distribution really was wide


def test_top_k_and_top_p_restrict_choices():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]])).repeat(2000, 1)
    u = path_uniforms(path_keys(0, [0], 2000), step=0)
    k2 = choose_tokens(logits, SamplingParams(top_k=2), u)
    assert set(k2.tolist()) == {0, 1}
    assert abs((k2 == 0).double().mean().item() - 0.5 / 0.8) < 0.04  # renormalised over the top 2
    p = choose_tokens(logits, SamplingParams(top_p=0.8), u)  # 0.5 + 0.3 reaches 0.8
    assert set(p.tolist()) == {0, 1}
    exact = torch.tensor([[0.5, 0.25, 0.25]], dtype=torch.double).log().repeat(2000, 1)
    assert set(choose_tokens(exact, SamplingParams(top_p=0.75), u).tolist()) == {0, 1}  # 0.5 + 0.25 = 0.75
    full = choose_tokens(logits, SamplingParams(), u)
    freq = torch.bincount(full, minlength=4).double() / 2000
    assert torch.allclose(freq, torch.tensor([0.5, 0.3, 0.15, 0.05], dtype=torch.double), atol=0.035)
    assert set(choose_tokens(logits, SamplingParams(temperature=0), u).tolist()) == {0}


def _reference_choice(logits, params, uniforms):
    """The sampling definition as first written (every path ever sampled follows it): float64 softmax, CDF,
    search, the last token with mass as the round-off guard."""
    if params.temperature == 0:
        return logits.argmax(-1)
    logits = logits / params.temperature
    if params.top_k:
        kth = logits.topk(min(params.top_k, logits.shape[-1]), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = logits.double().softmax(-1)
    if params.top_p < 1:
        sorted_p, order = probs.sort(-1, descending=True)
        drop = sorted_p.cumsum(-1) - sorted_p >= params.top_p
        probs = probs.scatter(-1, order, sorted_p.masked_fill(drop, 0.0))
    cdf = probs.cumsum(-1)
    idx = torch.searchsorted(cdf, (uniforms * cdf[:, -1]).unsqueeze(-1), right=True).squeeze(-1)
    return torch.minimum(idx, (probs > 0).long().cumsum(-1).argmax(-1))


def test_choose_tokens_keeps_the_sampling_definition_bit_for_bit():
    """The faster choice (reused buffers, the guard only where needed, per-row steps) picks exactly the tokens
    of the original definition, the round-off guard included (u · total = total, as round-off can make it; banned
    tail tokens, so the last token with mass is not the last id)."""
    from pathprune.engine.sampling import Workspace

    gen = torch.Generator().manual_seed(0)
    keys = path_keys(3, [5, 9], 16)
    workspace = Workspace()
    settings = [SamplingParams(), SamplingParams(temperature=0.7), SamplingParams(top_p=0.9),
                SamplingParams(top_k=20, temperature=0.6), SamplingParams(temperature=0)]
    for params in settings:
        for step in range(30):
            logits = torch.randn(32, 500, generator=gen) * 4
            logits[:, -7:] = float("-inf")  # banned ids at the end: the last token with mass is not the last id
            steps = torch.arange(32) + step
            u = path_uniforms(keys, steps)
            assert torch.equal(u, torch.stack([path_uniforms(keys[i:i + 1], int(s))[0] for i, s in enumerate(steps)]))
            if step == 0:
                u[::2] = 1.0  # the search finds no token: the guard's case
            expected = _reference_choice(logits, params, u)
            for ws in (None, workspace):
                assert torch.equal(choose_tokens(logits, params, u, ws), expected), (params, step)
            if step == 0 and params.temperature and params.top_p == 1 and not params.top_k:
                assert (expected[::2] == 492).all()  # the last id with mass


def test_mix64_matches_splitmix64_reference():
    mask = (1 << 64) - 1

    def ref(x):
        z = (x + 0x9E3779B97F4A7C15) & mask
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        return z ^ (z >> 31)

    xs = [0, 1, 12345, 2**40 + 7, 2**62]
    got = mix64(torch.tensor(xs, dtype=torch.long)).tolist()
    assert [g % (1 << 64) for g in got] == [ref(x) for x in xs]


def test_validation(testbed):
    model, tok = testbed
    with pytest.raises(PathpruneError, match="top_p must be in \\(0, 1\\], got 0"):
        SamplingParams(top_p=0)
    with pytest.raises(PathpruneError, match="n must be >= 1"):
        SamplingParams(n=0)
    with pytest.raises(PathpruneError, match="exceeds the model's context of 256"):
        sample(model, tok, [[1, 2, 3]], SamplingParams(max_new_tokens=300))
    with pytest.raises(PathpruneError, match="at least one token"):
        sample(model, tok, [[]], SamplingParams())
