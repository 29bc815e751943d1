"""The Monte-Carlo oracle: its label by hand (greedy), doomed vs sound prefixes, the live batch untouched."""

import pytest
import torch

from pathprune.engine import LiveBatch, SamplingParams
from pathprune.engine.backend import suppressed_ids
from pathprune.errors import PathpruneError
from pathprune.signals import CheckView, get_signal
from pathprune.signals.oracle import OracleSignal
from pathprune.tasks.grading import grade
from pathprune.testbed.problems import generate
from pathprune.evaluation.problems import requests_for

from conftest import run_pruner


def _state(batch):
    return ([t.clone() for layer in batch.cache.layers for t in (layer.keys, layer.values)],
            batch.mask.clone(), batch.next_pos.clone(), batch.logits.clone(), batch.keys.clone())


def _same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a[0], b[0])) and all(torch.equal(x, y) for x, y in zip(a[1:], b[1:]))


def test_greedy_oracle_equals_hand_rollout_and_leaves_the_batch_alone(testbed):
    model, tok = testbed
    problems = generate("chain", 2, 1, "test") + generate("chain", 8, 1, "test") + generate("list", 2, 1, "test")
    prompts = [tok(p.prompt).input_ids for p in problems]
    batch = LiveBatch.launch(model, prompts, 2, tok.pad_token_id, seed=5)
    batch.decode_until(8, SamplingParams(seed=5), eos=torch.tensor([tok.eos_token_id]),
                       banned=torch.tensor(suppressed_ids(model, tok)))
    before = _state(batch)
    view = CheckView(batch, requests_for(tok, problems), tok, stage=0, seed=5)
    scores = OracleSignal("3:temperature=0:max_new_tokens=30").score(view)
    assert _same(before, _state(batch)) and batch.check_tokens == 0

    banned, tokens = suppressed_ids(model, tok), 0
    for row, rec in enumerate(batch.records):  # greedy continuation by transformers' own generate()
        ids = prompts[rec.problem_index] + rec.tokens
        out = model.generate(torch.tensor([ids]), do_sample=False, max_new_tokens=30 - len(rec.tokens),
                             suppress_tokens=banned, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
        cont = out[0, len(ids):].tolist()
        correct = grade(problems[rec.problem_index], tok.decode(rec.tokens + cont, skip_special_tokens=True))[1]
        assert scores[row].item() == float(correct)  # K identical greedy rollouts: 0 or 1
        tokens += len(ids) + 3 * len(cont)
    assert view.reencoded_tokens == tokens
    assert 0 < scores.sum() < len(scores)  # both outcomes occur (chain d=8 cannot finish in 30 tokens)


def test_oracle_separates_doomed_from_sound_prefixes(testbed):
    model, tok = testbed
    problem = generate("chain", 2, 1, "test")[0]
    spec = problem.meta["spec"]
    (op, y), x = spec.ops[0], spec.start
    right = {"+": (x + y) % 10, "-": (x - y) % 10, "*": (x * y) % 10}[op]
    prefixes = [f"S0 {x} {op} {y} = {right} ;", f"S0 {x} {op} {y} = {(right + 1) % 10} ;"]
    forced = [tok(p, add_special_tokens=False).input_ids for p in prefixes]
    batch = LiveBatch.launch(model, [tok(problem.prompt).input_ids], 2, tok.pad_token_id)
    for step in range(len(forced[0])):  # force the two prefixes into the live batch
        chosen = torch.tensor([f[step] for f in forced])
        for rec, t in zip(batch.records, chosen.tolist()):
            rec.tokens.append(t)
        batch._forward(chosen)
    sound, doomed = get_signal("oracle:12").score(CheckView(batch, requests_for(tok, [problem]), tok, stage=0)).tolist()
    assert sound >= 0.6 and doomed <= 0.2  # every chain op is a bijection: an early slip is never undone


def test_oracle_in_the_engine_changes_no_surviving_path(testbed):
    model, tok = testbed
    problems = generate("chain", 4, 1, "test")
    params = SamplingParams(n=4, max_new_tokens=60, seed=2)
    plain = run_pruner(problems, model, tok, "random", None, params)
    pruned = run_pruner(problems, model, tok, "oracle:4:max_new_tokens=60", "10:2", params)
    for a, b in zip(plain, pruned):
        assert sum(p.kept for p in b.paths) == 2 and b.usage.reencoded > 0 and b.usage.check == 0
        for pa, pb in zip(a.paths, b.paths):
            assert pb.scores[0] in {0, 0.25, 0.5, 0.75, 1.0}
            if pb.kept:
                assert pa.text == pb.text
    assert get_signal("oracle").taxonomy == "ref"


def test_oracle_arguments():
    assert get_signal("oracle").k == 8 and get_signal("oracle:32").k == 32
    sig = get_signal("oracle:4:max_new_tokens=64:temperature=0.6:top_p=0.95")
    assert (sig.k, sig.max_new_tokens, sig.temperature, sig.top_p) == (4, 64, 0.6, 0.95)
    assert (get_signal("oracle:temperature=0").k, get_signal("oracle:temperature=0").temperature) == (8, 0.0)
    for spec, message in [("oracle:x", "needs an integer K"), ("oracle:0", "K >= 1"),
                          ("oracle:4:foo=1", "unknown option 'foo=1'"), ("oracle:4:top_p=2", "top_p must be in"),
                          ("oracle:4:max_new_tokens=a", "max_new_tokens needs a number")]:
        with pytest.raises(PathpruneError, match=message):
            get_signal(spec)
