"""Launch–Check–Resume: exactness against re-encoding, cache restoration, schedules, accounting."""

import copy

import pytest
import torch

from pathprune.engine import LiveBatch, Pruner, SamplingParams, Schedule, Stage
from pathprune.engine.backend import eos_ids, suppressed_ids
from pathprune.errors import PathpruneError
from pathprune.signals import Signal, get_signal
from pathprune.testbed.problems import generate
from conftest import run_pruner


class ProbeSignal(Signal):
    """An internal signal that appends 4 [STOP] tokens to every cached prefix (as STOP does)."""

    name, source, learnable = "probe", "internal", False

    def score(self, view):
        stop = view.tokenizer.convert_tokens_to_ids("[STOP]")
        out = view.batch.probe(torch.full((4,), stop))
        return out.hidden_states[-1][:, -1].norm(dim=-1)


def _problems(*levels):
    return [generate(f, d, 1, "test", seed=i)[0] for i, (f, d) in enumerate(levels)]


def _launch(model, tok, problems, n):
    prompts = [tok(p.prompt).input_ids for p in problems]
    batch = LiveBatch.launch(model, prompts, n, tok.pad_token_id)
    kw = dict(eos=torch.tensor(sorted(eos_ids(model, tok))), banned=torch.tensor(suppressed_ids(model, tok)))
    return prompts, batch, kw


def test_check_leaves_cache_bit_identical_and_matches_reencoding(testbed):
    model, tok = testbed
    problems = _problems(("chain", 3), ("list", 8), ("chain", 10))
    prompts, batch, kw = _launch(model, tok, problems, 3)
    batch.decode_until(12, SamplingParams(seed=0), **kw)
    snapshot = copy.deepcopy(batch.cache)
    stop = tok.convert_tokens_to_ids("[STOP]")
    out = batch.probe(torch.full((4,), stop))
    for a, b in zip(batch.cache.layers, snapshot.layers):
        assert torch.equal(a.keys, b.keys) and torch.equal(a.values, b.values)
    assert batch.check_tokens == 9 * 4
    for row, rec in enumerate(batch.records):  # every row against an unpadded re-encode of its own prefix
        ids = torch.tensor([prompts[rec.problem_index] + rec.tokens + [stop] * 4])
        ref = model(ids, output_hidden_states=True).hidden_states[-1][0, -4:]
        torch.testing.assert_close(out.hidden_states[-1][row], ref, atol=1e-4, rtol=1e-4)


def test_resumed_paths_equal_reencoding_their_prefix(testbed):
    model, tok = testbed
    problems = _problems(("chain", 2), ("list", 6), ("chain", 9))
    prompts, batch, kw = _launch(model, tok, problems, 4)
    batch.decode_until(10, SamplingParams(temperature=1.0), **kw)
    prefixes = {(r.problem_index, r.path_index): list(r.tokens) for r in batch.records}
    batch.select([9, 0, 5])  # out of order, across problems
    for row, rec in enumerate(batch.records):
        ids = torch.tensor([prompts[rec.problem_index] + rec.tokens])
        torch.testing.assert_close(batch.logits[row], model(ids).logits[0, -1], atol=1e-4, rtol=1e-4)
    kept = list(batch.records)
    batch.decode_until(80, SamplingParams(temperature=0), feed_last=False, **kw)
    for rec in kept:
        prefix = prompts[rec.problem_index] + prefixes[(rec.problem_index, rec.path_index)]
        ref = model.generate(torch.tensor([prefix]), do_sample=False, max_new_tokens=70)[0, len(prefix):].tolist()
        assert rec.tokens[10:] == ref[: len(rec.tokens) - 10]


def _run(model, tok, problems, schedule, signal="random", n=8, seed=0, **kw):
    params = SamplingParams(n=n, temperature=1.0, max_new_tokens=160, seed=seed)
    return run_pruner(problems, model, tok, signal, schedule, params, **kw)


def test_k_equal_n_changes_nothing_even_with_a_probing_signal(testbed):
    model, tok = testbed
    problems = _problems(("chain", 8), ("list", 7))
    plain = _run(model, tok, problems, None)
    checked = _run(model, tok, problems, "20:8", signal=ProbeSignal())
    for a, b in zip(plain, checked):
        assert [p.text for p in a.paths] == [p.text for p in b.paths]
        assert all(p.kept for p in b.paths) and b.usage.check == 8 * 4
    # per-path random streams: pruning never changes the paths that survive it
    for a, b in zip(plain, _run(model, tok, problems, "20:4", signal="mean_logprob")):
        kept = [p for p in b.paths if p.kept]
        assert len(kept) == 4 and all(p.text == a.paths[p.index].text for p in kept)
        assert all(p.text.split()[:20] == a.paths[p.index].text.split()[:20] for p in b.paths)


def test_k1_accounting_and_memory(testbed):
    model, tok = testbed
    problems = _problems(("chain", 10), ("list", 8))
    results = _run(model, tok, problems, "12:2", signal="mean_logprob")
    for r in results:
        kept = [p for p in r.paths if p.kept]
        assert len(kept) == 2 and all(p.pruned_at == 0 for p in r.paths if not p.kept)
        assert r.usage.pruned_prefix == 6 * 12  # no testbed path ends within 12 tokens at these levels
        assert r.usage.kept_prefix == 2 * 12
        assert r.usage.kept_continuation == sum(p.num_tokens for p in kept) - 24
        assert r.usage.generated == sum(p.num_tokens for p in r.paths)
        assert r.usage.prompt == len(tok(r.problem.prompt).input_ids) and r.usage.check == 0
        # kept paths had the best mean log-prob of their problem at the checkpoint
        tie = lambda x: float(f"{x:.5g}")  # noqa: E731  (the engine's tie tolerance)
        assert min(tie(p.scores[0]) for p in kept) >= max(tie(p.scores[0]) for p in r.paths if not p.kept)
        assert r.output.memory["cache_bytes_after_first_prune"] * 8 == r.output.memory["cache_bytes_before_first_prune"] * 2
    one = _run(model, tok, problems, "12:1")
    for r in one:
        (kept,) = [p for p in r.paths if p.kept]
        assert r.answer == kept.answer


def test_cascade_and_early_eos(testbed):
    model, tok = testbed
    problems = _problems(("chain", 1), ("list", 8))  # chain d=1 paths end (EOS) within ~12 tokens
    results = _run(model, tok, problems, "16:6,24:4,32:2", signal=ProbeSignal())
    short, long = results
    assert all(p.kept and p.finished and not p.scores for p in short.paths)  # complete before the first check
    assert short.usage.pruned_prefix == 0 and short.usage.kept_continuation == 0
    assert [sum(p.pruned_at == s for p in long.paths) for s in range(3)] == [2, 2, 2]
    assert sum(p.kept for p in long.paths) == 2
    assert all(len(p.scores) == (p.pruned_at + 1 if p.pruned_at is not None else 3) for p in long.paths)
    assert long.usage.pruned_prefix == 2 * 16 + 2 * 24 + 2 * 32
    assert long.usage.check == (8 + 6 + 4) * 4 and short.usage.check == 0


def test_same_seed_same_result_and_ties(testbed):
    model, tok = testbed
    problems = _problems(("chain", 6), ("list", 5))
    a = [r.path_rows() for r in _run(model, tok, problems, "10:3", seed=5)]
    b = [r.path_rows() for r in _run(model, tok, problems, "10:3", seed=5)]
    assert a == b
    assert a != [r.path_rows() for r in _run(model, tok, problems, "10:3", seed=6)]
    one_by_one = _run(model, tok, problems, "10:3", seed=5, problems_per_batch=1)
    assert a == [r.path_rows() for r in one_by_one]  # batching does not change results

    class Constant(Signal):
        name, source, learnable = "constant", "none", False

        def score(self, view):
            return torch.zeros(len(view.records))

    tied = _run(model, tok, problems, "10:3", signal=Constant())
    assert all([p.index for p in r.paths if p.kept] == [0, 1, 2] for r in tied)


@pytest.mark.parametrize(
    "schedule, message",
    [
        ("64:9", "k must be in [1, 8], got k=9"),
        ("10:4,20:6", "keeps must shrink"),
        ("20:4,10:2", "checkpoint lengths must increase"),
        ("10", "bad schedule stage '10'"),
        ("200:2", "must be below max_new_tokens=160"),
    ],
)
def test_bad_schedules(testbed, schedule, message):
    model, tok = testbed
    with pytest.raises(PathpruneError) as err:
        Pruner((model, tok), "random", schedule).generate("C 1 + 2 =", SamplingParams(n=8, max_new_tokens=160))
    assert message in str(err.value)


@pytest.mark.parametrize("build, message", [
    (lambda: Stage(16), "give exactly one of keep and threshold"),
    (lambda: Stage(16, keep=2, threshold=0.5), "give exactly one of keep and threshold"),
    (lambda: Stage(0, keep=2), "checkpoint lengths must be >= 1"),
    (lambda: Stage(16, keep=0), "k must be >= 1"),
    (lambda: Schedule((Stage(16, keep=4), Stage(8, keep=2))), "checkpoint lengths must increase"),
    (lambda: Schedule((Stage(8, keep=2), Stage(16, keep=4))), "keeps must shrink"),
])
def test_stages_and_schedules_are_checked_when_built(build, message):
    with pytest.raises(PathpruneError, match=message):
        build()
    assert Schedule.parse("none") == Schedule.none() == Schedule.of(None) and not Schedule.parse(" none ").stages


def test_threshold_schedule_and_signal_errors(testbed):
    model, tok = testbed
    assert str(Schedule.parse("512:32, 1024:t=0.5")) == "512:32,1024:t=0.5"
    results = _run(model, tok, _problems(("chain", 9)), "10:t=0.5")
    paths = results[0].paths
    above = {p.index for p in paths if p.scores[0] >= 0.5}
    best = max(paths, key=lambda p: p.scores[0]).index
    assert {p.index for p in paths if p.kept} == (above or {best})
    results = _run(model, tok, _problems(("chain", 9)), "10:t=2.0")  # random scores never reach 2: keep the best
    assert sum(p.kept for p in results[0].paths) == 1
    with pytest.raises(PathpruneError, match="did you mean 'random'"):
        get_signal("randon")

    class Broken(Signal):
        name, source, learnable = "broken", "none", False

        def score(self, view):
            return torch.zeros(3)

    with pytest.raises(PathpruneError, match="returned \\(3,\\) scores for 8 paths"):
        _run(model, tok, _problems(("chain", 9)), "10:2", signal=Broken())
