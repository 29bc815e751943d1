"""The user surface: ``Pruner(...).generate(prompts, SamplingParams(...))`` with text, chat messages and token ids."""

from __future__ import annotations

import pytest

from pathprune import PathpruneError, Pruner, SamplingParams
from pathprune.engine.selection import majority, select_kept
from pathprune.evaluation.problems import solve
from pathprune.testbed.problems import generate


@pytest.fixture(scope="module")
def pruner(testbed):
    return Pruner(testbed, signal="stop", schedule="16:4")


def test_the_readme_snippet_runs_as_written(testbed):
    from pathprune import Pruner, SamplingParams

    pruner = Pruner("testbed", signal="stop", schedule="16:4")
    outs = pruner.generate(["C 2 + 3 * 4 - 1 =", [{"role": "user", "content": "C 2 + 3 * 4 - 1 ="}], [1, 24, 7]],
                           SamplingParams(n=8, max_new_tokens=80, seed=0))
    assert len(outs) == 3
    for out in outs:
        assert len(out.paths) == 8 and [p.index for p in out.paths] == list(range(8))
        live = [p for p in out.paths if p.scores]  # reached the checkpoint alive
        assert sum(p.kept for p in live) == min(4, len(live))
        assert out.answer == majority([p.answer for p in out.paths if p.kept])
        assert out.usage.generated == sum(p.num_tokens for p in out.paths)
        assert all(p.answer is None and p.num_tokens == 16 for p in out.paths if not p.kept)
    # the chat prompt has no template on the testbed: its content is the prompt, so the paths are the same
    assert [p.text for p in outs[0].paths] == [p.text for p in outs[1].paths]
    assert outs[0].answer is not None and outs[0].prompt_token_ids == outs[1].prompt_token_ids


def test_token_ids_give_the_same_paths_as_their_text(pruner, testbed):
    _, tok = testbed
    text = "C 2 + 3 * 4 - 1 ="
    params = SamplingParams(n=6, max_new_tokens=60, seed=3)
    by_text, = pruner.generate(text, params)
    by_ids, = pruner.generate(tok(text).input_ids, params)
    assert [p.token_ids for p in by_text.paths] == [p.token_ids for p in by_ids.paths]
    assert by_text.request_id == by_ids.request_id


def test_per_call_overrides_and_no_pruning(pruner):
    params = SamplingParams(n=6, max_new_tokens=60, seed=1)
    plain, = pruner.generate("C 1 + 2 * 3 =", params, schedule="none")
    assert all(p.kept and not p.scores for p in plain.paths) and plain.usage.check == 0
    scored, = pruner.generate("C 1 + 2 * 3 =", params, signal="mean_logprob", schedule="12:2")
    live = [(p.index, p.scores[0]) for p in scored.paths if p.scores]
    assert [p.index for p in scored.paths if p.kept and p.scores] == select_kept(live, keep=2)
    # pruning never changes a surviving path: its tokens equal the unpruned run's
    for p in scored.paths:
        if p.kept:
            assert p.token_ids == plain.paths[p.index].token_ids
    assert pruner.signal.name == "stop" and str(pruner.schedule) == "16:4"  # the call did not change the pruner


def test_generate_equals_solve_on_problems(pruner):
    problems = generate("chain", 8, 2, "test", seed=5)
    params = SamplingParams(n=6, max_new_tokens=120, seed=0)
    graded = solve(pruner, problems, params)
    outs = pruner.generate([p.prompt for p in problems], params, request_ids=[p.id for p in problems],
                           answer_kind="testbed")
    for g, out in zip(graded, outs):
        assert [p.token_ids for p in g.paths] == [p.token_ids for p in out.paths]
        assert g.answer == out.answer and g.correct == (out.answer == g.problem.answer)


@pytest.mark.parametrize("prompts, match", [
    ([], "at least one prompt"),
    ([3.5], "a prompt is text"),
    ([[]], "a prompt is text"),
    ([["C 1 =", 4]], "a prompt is text"),
])
def test_bad_prompts_are_one_line_errors(pruner, prompts, match):
    with pytest.raises(PathpruneError, match=match):
        pruner.generate(prompts, SamplingParams(n=2, max_new_tokens=20))


def test_bad_construction_is_a_one_line_error(testbed):
    with pytest.raises(PathpruneError, match="unknown backend 'vllmm'"):
        Pruner(testbed, backend="vllmm")
    with pytest.raises(PathpruneError, match="did you mean 'stop'"):
        Pruner(testbed, signal="stpo")
    with pytest.raises(PathpruneError, match="checkpoint lengths must increase"):
        Pruner(testbed, schedule="16:4,8:2")
    with pytest.raises(PathpruneError, match=r"k must be in \[1, 4\]"):
        Pruner(testbed, schedule="16:8").generate("C 1 =", SamplingParams(n=4, max_new_tokens=40))
    with pytest.raises(PathpruneError, match="tokenizer"):
        Pruner(testbed[0])


def test_backend_vllm_without_vllm_is_a_one_line_error():
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed here (tests/test_vllm.py runs it)")
    with pytest.raises(PathpruneError, match="backend 'vllm' needs vLLM: pip install"):
        Pruner("testbed", backend="vllm")
