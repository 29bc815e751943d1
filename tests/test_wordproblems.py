"""Procedural word problems: determinism, disjoint splits, correct answers, grading, CLI spec, SmolLM2 end to end."""

import json
import re

import pytest

from pathprune.cli import main
from pathprune.errors import PathpruneError
from pathprune.tasks import grade
from pathprune.tasks.splits import SPLITS, split_of
from pathprune.tasks.wordproblems import FORMATS, MAX_VALUE, TEMPLATES, from_spec, generate, parse_spec, solve, suite


def test_generation_is_deterministic_and_seeded():
    a = suite("train", 12, seed=3, levels=(1, 2, 3))
    b = suite("train", 12, seed=3, levels=(1, 2, 3))
    assert [(p.id, p.answer, p.messages) for p in a] == [(p.id, p.answer, p.messages) for p in b]
    c = suite("train", 12, seed=4, levels=(1, 2, 3))
    assert {p.id for p in a} != {p.id for p in c}
    assert len(a) == 36 and len({p.id for p in a}) == 36
    assert {p.meta["family"] for p in a} == set(TEMPLATES)
    assert {p.meta["difficulty"] for p in a} == {1, 2, 3}


def test_splits_are_disjoint_across_seeds_and_levels():
    by_split = {s: {p.meta["question"] for seed in (0, 1) for p in suite(s, 30, seed, (1, 2, 3, 4))}
                for s in SPLITS}
    assert all(len(v) > 50 for v in by_split.values())
    assert not by_split["train"] & by_split["validation"]
    assert not by_split["train"] & by_split["test"]
    assert not by_split["validation"] & by_split["test"]
    for s, questions in by_split.items():
        assert all(split_of(q) == s for q in questions)


def _numbers(text):
    return [int(x) for x in re.findall(r"\d+", text)]


@pytest.mark.parametrize("level", [1, 2, 3, 4, 5])
def test_answers_are_correct_by_construction(level):
    """Recompute each answer from its spec with an independent fold, and check the story states those numbers."""
    ops = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "/": lambda a, b: a / b}
    words = {"doubles": 2, "triples": 3, "twice": 2, "half": 2}
    for p in generate(level, 40, "train", seed=0):
        spec = p.meta["spec"]
        assert len(spec["steps"]) == level and spec["level"] == level
        value = spec["start"]
        for op, operand in spec["steps"]:
            value = ops[op](value, operand)
            assert value == int(value) and 1 <= value <= MAX_VALUE  # every intermediate is a small positive integer
        assert p.answer == str(int(value)) == str(solve(spec))
        question = p.meta["question"]
        stated = _numbers(question)
        assert stated[0] == spec["start"]
        for op, operand in spec["steps"]:  # each operand is written out, as a number or a word
            assert operand in stated or any(w in question and words[w] == operand for w in words)
        assert p.messages[0]["content"].startswith(question)


def test_formats_and_grading_with_math_verify():
    boxed = generate(2, 3, "test", seed=0, fmt="boxed")
    final = generate(2, 3, "test", seed=0, fmt="final")
    assert [p.meta["question"] for p in boxed] == [p.meta["question"] for p in final]
    assert boxed[0].messages[0]["content"].endswith(FORMATS["boxed"])
    assert final[0].messages[0]["content"].endswith(FORMATS["final"])
    p = boxed[0]
    right, wrong = int(p.answer), int(p.answer) + 1
    assert grade(p, f"First ... so the total is \\boxed{{{right}}}.") == (str(right), True)
    assert grade(p, f"Some steps.\nFinal answer: {right}") == (str(right), True)
    assert grade(p, f"Some steps.\nFinal answer: ${right}.00$")[1]  # equal as numbers
    assert grade(p, f"Some steps.\nFinal answer: {wrong}")[1] is False
    assert grade(p, f"\\boxed{{{wrong}}}")[1] is False
    assert grade(p, "I am not sure.") == (None, False)


def test_spec_parsing_and_errors():
    assert parse_spec("wordproblems") == {"levels": (1, 2, 3), "fmt": "final"}
    assert parse_spec("wordproblems:1,2:final") == {"levels": (1, 2), "fmt": "final"}
    problems = from_spec("wordproblems:2", "validation", 5, 0)
    assert len(problems) == 5 and all(p.meta["split"] == "validation" and p.meta["difficulty"] == 2 for p in problems)
    for bad, needle in [("wordproblems:9", "levels must lie in 1..5"), ("wordproblems:x", "comma-separated"),
                        ("wordproblems:1:latex", "unknown answer format"), ("wordproblem", "expected wordproblems")]:
        with pytest.raises(PathpruneError, match=needle):
            parse_spec(bad)
    with pytest.raises(PathpruneError, match="unknown split"):
        generate(1, 3, "dev")
    with pytest.raises(PathpruneError, match="unknown word-problem template"):
        generate(1, 3, "test", templates=("trains",))


def test_cli_rejects_a_bad_spec_in_one_line(tmp_path, capsys):
    assert main(["run", "--out", str(tmp_path / "r"), "--benchmark", "wordproblems:0"]) == 2
    err = capsys.readouterr().err
    assert "levels must lie in 1..5" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_smollm2_label_and_eval_end_to_end(tmp_path):
    """The docs/smollm2.md pipeline in miniature on the real model: label (2 problems) then eval (2 problems)."""
    labels = tmp_path / "labels"
    code = main(["label", "--out", str(labels), "--model", "smollm2-135m", "--benchmark", "wordproblems:1",
                 "--testbed-split", "train", "--per-level", "2", "--n-filter", "4", "--min-correct", "0",
                 "--max-correct", "1", "--prefix-tokens", "8", "--k", "2", "--max-new-tokens", "24",
                 "--temperature", "0.7"])
    assert code == 0
    units = [json.loads(x) for x in (labels / "problems.jsonl").read_text().splitlines()]
    recs = [json.loads(x) for x in (labels / "labels.jsonl").read_text().splitlines()]
    assert len(units) == 2 and all(u["kept"] and u["n_filter"] == 4 for u in units)
    assert 1 <= len(recs) <= 8 and all(r["prefix_len"] == 8 and len(r["outcomes"]) == 2 for r in recs)
    assert all(r["prefix_token_ids"][:r["prompt_len"]] == recs[0]["prefix_token_ids"][:recs[0]["prompt_len"]]
               for r in recs if r["problem_id"] == recs[0]["problem_id"])
    out = tmp_path / "eval"
    code = main(["eval", "--out", str(out), "--model", "smollm2-135m", "--benchmark", "wordproblems:1",
                 "--per-level", "2", "--n", "4", "--prefix", "8", "--keep", "2", "--max-new-tokens", "24",
                 "--temperature", "0.7", "--signals", "random,mean_logprob,jaccard", "--bootstrap", "50"])
    assert code == 0
    evals = [json.loads(x) for x in (out / "problems.jsonl").read_text().splitlines()]
    assert len(evals) == 2 and all(u["problem_id"].startswith("wp-") for u in evals)
    paths = [json.loads(x) for x in (out / "paths.jsonl").read_text().splitlines()]
    assert len(paths) == 8 and all(1 <= p["tokens"] <= 24 for p in paths)
