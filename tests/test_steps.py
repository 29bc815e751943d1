"""Step checkpoints (``stepM/L``) on the transformers backend: where paths pause, exactness, accounting.

The testbed writes steps separated by " ;" at nearly the same lengths on every path, so most tests set the
delimiter to a digit instead: its M-th occurrence falls at a different length on each path, which is what
makes paths of one batch pause apart (the masked-placeholder wait of ``LiveBatch.decode_until``).
"""

import pytest

from pathprune.engine import Pruner, SamplingParams, Schedule
from pathprune.engine.steps import StepCounter
from pathprune.errors import PathpruneError
from pathprune.testbed.problems import generate

PROBLEMS = [generate(f, d, 1, "test", seed=i)[0] for i, (f, d) in enumerate((("chain", 8), ("list", 7), ("chain", 9)))]


def _params(delimiter="3", n=8):
    return SamplingParams(n=n, temperature=1.0, max_new_tokens=120, seed=3, step_delimiter=delimiter)


@pytest.fixture(scope="module")
def pruner(testbed):
    return Pruner(testbed, "mean_logprob", problems_per_batch=3)


@pytest.fixture(scope="module")
def unpruned(pruner):
    return pruner.generate([p.prompt for p in PROBLEMS], _params())


def test_paths_pause_exactly_at_their_mth_delimiter_or_the_cap_and_k_equal_n_changes_nothing(pruner, unpruned):
    counter = StepCounter(pruner.tokenizer, "3")
    checked = pruner.generate([p.prompt for p in PROBLEMS], _params(), schedule="step2/30:8")
    positions, capped = set(), 0
    for plain, out in zip(unpruned, checked, strict=True):
        for a, b in zip(plain.paths, out.paths, strict=True):
            assert a.token_ids == b.token_ids and b.kept  # pausing rows apart changes no token
            text = pruner.tokenizer.decode(b.token_ids[:b.checked_at[0]]) if b.checked_at else None
            if b.checked_at == [30]:
                capped += 1
                assert text.count("3") < 2
            else:  # the prefix ends on the token that completes the 2nd "3", not one later or earlier
                assert text.count("3") >= 2 > pruner.tokenizer.decode(b.token_ids[:b.checked_at[0] - 1]).count("3")
            assert b.checked_at == [counter.position(b.token_ids, 2, 30)]  # the offline definition agrees
            positions.add(b.checked_at[0])
        assert out.answer == plain.answer and out.usage.generated == plain.usage.generated
    assert len(positions) >= 5 and capped  # paths paused apart, and some only at the cap


def test_pruned_run_accounting_against_a_hand_count(pruner, unpruned):
    outs = pruner.generate([p.prompt for p in PROBLEMS], _params(), schedule="step2/30:3")
    for plain, out in zip(unpruned, outs, strict=True):
        kept = [p for p in out.paths if p.kept]
        assert len(kept) == 3 and all(p.token_ids == plain.paths[p.index].token_ids for p in kept)
        pruned = [p for p in out.paths if not p.kept]
        assert all(p.num_tokens == p.checked_at[0] and p.pruned_at == 0 for p in pruned)
        assert out.usage.pruned_prefix == sum(p.checked_at[0] for p in pruned)
        assert out.usage.kept_prefix == sum(p.checked_at[0] for p in kept)
        assert out.usage.kept_continuation == sum(p.num_tokens - p.checked_at[0] for p in kept)
        # the kept paths had the best mean log-probability of their own (different-length) prefixes
        tie = lambda x: float(f"{x:.5g}")  # noqa: E731  (the engine's tie tolerance)
        assert min(tie(p.scores[0]) for p in kept) >= max(tie(p.scores[0]) for p in pruned)
        for p in out.paths:
            logprobs = plain.paths[p.index]
            assert logprobs.token_ids[:p.checked_at[0]] == p.token_ids[:p.checked_at[0]]


def test_cascades_mix_fixed_and_step_checkpoints(pruner, unpruned):
    outs = pruner.generate([p.prompt for p in PROBLEMS], _params(), schedule="6:7,step2/24:5,step4/40:3,44:2")
    counter = StepCounter(pruner.tokenizer, "3")
    for plain, out in zip(unpruned, outs, strict=True):
        assert [sum(p.pruned_at == s for p in out.paths) for s in range(4)] == [1, 2, 2, 1]
        for p in out.paths:
            assert p.token_ids == plain.paths[p.index].token_ids[:p.num_tokens]
            stages = p.pruned_at + 1 if p.pruned_at is not None else 4
            assert len(p.scores) == len(p.checked_at) == stages
            full = plain.paths[p.index].token_ids  # a pruned path's tokens end at its pause
            expected = [6, max(6, counter.position(full, 2, 24) or 0), counter.position(full, 4, 40), 44][:stages]
            # a path with two 3s within its first 6 tokens is checked where it stands
            assert p.checked_at == expected
        assert out.usage.generated == sum(p.num_tokens for p in out.paths)


def test_paths_that_end_before_a_step_checkpoint_are_complete_not_checked(pruner):
    short = generate("chain", 1, 1, "test", seed=0)[0]  # ends within ~10 tokens, one ";" step
    params = _params(delimiter=";", n=4)
    out = pruner.generate(short.prompt, params, schedule="step3/40:1")[0]
    plain = pruner.generate(short.prompt, params)[0]
    assert all(p.kept and p.finished and not p.scores and not p.checked_at for p in out.paths)
    assert out.usage.generated == plain.usage.generated == out.usage.kept_prefix  # all before the checkpoint


def test_the_step_counter_matches_on_decoded_text(testbed):
    _, tok = testbed
    counter = StepCounter(tok, "= 5 ;")  # a delimiter spread over several tokens
    ids = tok("S0 2 + 3 = 5 ; 5 * 4 = 5 ; A 5").input_ids
    first = counter.position(ids, 1, 100)
    assert tok.decode(ids[:first]).endswith("= 5 ;") and "= 5 ;" not in tok.decode(ids[:first - 1])
    assert counter.position(ids, 2, 100) > first
    assert counter.position(ids, 3, 100) is None  # the path ends before a third: never checked
    assert counter.position(ids, 3, 4) == 4  # the cap comes first
    with pytest.raises(PathpruneError, match="non-empty"):
        StepCounter(tok, "")


@pytest.mark.parametrize("spec, message", [
    ("step2:4", "expected L:k"),
    ("step0/40:4", "steps >= 1"),
    ("step2/64:4,step2/96:2", "step counts must increase"),
    ("step2/40:4,30:2", "checkpoint lengths must increase"),
    ("24:4,step1/20:2", "checkpoint lengths must increase"),
])
def test_bad_step_stages_are_refused_when_built(spec, message):
    with pytest.raises(PathpruneError, match=message):
        Schedule.parse(spec)


def test_step_schedules_print_as_they_parse_and_bad_delimiters_are_refused():
    assert str(Schedule.parse(" step1/64:8 , step3/160:t=0.5,200:2")) == "step1/64:8,step3/160:t=0.5,200:2"
    assert [s.steps for s in Schedule.parse("step1/64:8,80:4").stages] == [1, None]
    with pytest.raises(PathpruneError, match="step_delimiter"):
        SamplingParams(step_delimiter="")
