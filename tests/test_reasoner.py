"""The reasoner suite: worked solutions that follow their specs, disjoint splits, error kinds, the CLI spec."""

import re

import pytest

from pathprune.cli import main
from pathprune.errors import PathpruneError
from pathprune.tasks import grade, reasoner, wordproblems
from pathprune.tasks.reasoner import (MAX_LEVEL, MAX_VALUE, THEMES, generate, gold_equations, parse_spec, solve,
                                      stated_numbers, step_values, suite)
from pathprune.tasks.reasoner_errors import classify, equations
from pathprune.tasks.splits import SPLITS, split_of

WORDS = {"twice": 2, "three times": 3, "doubles": 2, "triples": 3, "half": 2, "a third": 3, "a quarter": 4}


def test_generation_is_deterministic_seeded_and_pinned():
    a = suite("train", 10, seed=3, levels=(1, 2, 6))
    b = suite("train", 10, seed=3, levels=(1, 2, 6))
    assert [(p.id, p.answer, p.messages, p.meta["solution"]) for p in a] == \
        [(p.id, p.answer, p.messages, p.meta["solution"]) for p in b]
    assert {p.id for p in a} != {p.id for p in suite("train", 10, seed=4, levels=(1, 2, 6))}
    assert len({p.id for p in a}) == 30 and {p.meta["family"] for p in a} == set(THEMES)
    assert {p.meta["difficulty"] for p in a} == {1, 2, 6}
    # the shipped adapter was trained and measured on exactly these problems: pin a few
    assert [(p.id, p.answer) for p in generate(2, 3, "test", seed=0)] == [
        ("rp-collection-s2-eca3b3e524", "45"), ("rp-money-s2-f713e39797", "87"), ("rp-baking-s2-7f4b5c6c8d", "2")]


def test_default_word_problems_are_unchanged():
    assert [p.id for p in wordproblems.generate(2, 2, "test", seed=0)] == \
        [p.id for p in wordproblems.suite("test", 2, 0, levels=(2,))]
    assert wordproblems.MAX_LEVEL == 5 and set(wordproblems.TEMPLATES) == {"inventory", "shopping", "sharing", "ages"}


def test_splits_are_disjoint_across_seeds_and_levels():
    by_split = {s: {p.meta["question"] for seed in (0, 1) for p in suite(s, 25, seed, (1, 2, 4, 6))} for s in SPLITS}
    assert all(len(v) > 150 for v in by_split.values())
    assert not by_split["train"] & by_split["validation"]
    assert not by_split["train"] & by_split["test"]
    assert not by_split["validation"] & by_split["test"]
    for s, questions in by_split.items():
        assert all(split_of(q) == s for q in questions)


@pytest.mark.parametrize("level", range(1, MAX_LEVEL + 1))
def test_gold_solutions_follow_the_spec(level):
    """Every gold line states one step's equation with the spec's numbers; the last line is the reference."""
    for p in generate(level, 30, "train", seed=0):
        spec, solution, question = p.meta["spec"], p.meta["solution"], p.meta["question"]
        assert len(spec["steps"]) == level == spec["level"] == p.meta["difficulty"]
        values = step_values(spec)
        assert all(isinstance(v, int) and 2 <= v <= MAX_VALUE for v in values)
        lines = solution.splitlines()
        assert len(lines) == level + 1 and lines[-1] == f"Final answer: {p.answer}"
        assert p.answer == str(solve(spec)) == str(values[-1])
        # one sentence per step, each with its equation, in the spec's order, and the arithmetic holds
        gold = gold_equations(spec)
        assert [equations(line) for line in lines[:-1]] == [[g] for g in gold]
        for a, op, b, c in gold:
            assert {"+": a + b, "-": a - b, "*": a * b, "/": a / b}[op] == c
        # each operand is a number the problem states (digits or a word) or an earlier result
        for (op, left, right), (a, _, b, _) in zip(spec["steps"], gold):
            for ref, v in ((left, a), (right, b)):
                if isinstance(ref, int):
                    assert re.search(rf"\b{v}\b", question) or any(w in question and n == v for w, n in WORDS.items())
                else:
                    assert ref == "s" or int(ref[1:]) < len(values)
        assert int(re.findall(r"\d+", question)[0]) == spec["start"]
        # every step feeds the answer: no distractor steps
        used, todo = set(), [level - 1]
        while todo:
            i = todo.pop()
            used.add(i)
            todo += [int(x[1:]) for x in spec["steps"][i][1:] if isinstance(x, str) and x != "s"]
        assert used == set(range(level))
        assert grade(p, solution) == (p.answer, True)
        assert classify(spec, solution)["kind"] == "correct"
        assert p.messages[0]["content"] == f"{question}\n{wordproblems.FORMATS['final']}"


def test_more_operations_and_two_people():
    problems = suite("train", 60, 0, levels=(1, 2, 3, 4, 5, 6))
    ops = {st[0] for p in problems for st in p.meta["spec"]["steps"]}
    assert ops == {"+", "-", "*", "/"}
    text = " ".join(p.meta["question"] for p in problems)
    for phrase in ("twice as", "a third of", "fewer", "more", "each", "an hour", "together", "How many more",
                   "as many", "gives"):
        assert phrase in text, phrase
    # a step may combine two earlier quantities (two people), not only the running value and a stated number
    assert any(all(isinstance(x, str) for x in st[1:]) for p in problems for st in p.meta["spec"]["steps"])


def test_classify_tells_slips_from_plan_errors():
    spec = {"template": "collection", "level": 3, "start": 17, "steps": [["+", "s", 12], ["*", "#0", 2],
                                                                        ["-", "#1", 5]]}
    assert solve(spec) == 53 and stated_numbers(spec) == {17, 12, 2, 5}

    def kind(text):
        e = classify(spec, text)
        return e["kind"], e["detail"], e["step"], e["slip"]

    right = "She buys 12, so 17 + 12 = 29.\nDoubled: 29 * 2 = 58.\nShe loses 5: 58 - 5 = 53.\nFinal answer: 53"
    assert classify(spec, right) == {"kind": "correct", "detail": None, "step": None, "slip": False}
    assert kind("17 + 12 = 29.\n29 + 29 = 58.\n58 - 5 = 53.\nFinal answer: 53")[0] == "correct"
    assert kind("17 + 12 = 29.\n29 * 2 = 48.\n48 - 5 = 43.\nFinal answer: 43") == ("arithmetic", "29 * 2 = 48", 1, False)
    # an equivalent set-up ("twice" as an addition) with a wrong result is a slip too
    assert kind("17 + 12 = 29.\n29 + 29 = 48.\nFinal answer: 43")[:2] == ("arithmetic", "29 + 29 = 48")
    assert kind("17 + 12 = 29.\n29 * 2 = 58.\n58 + 5 = 63.\nFinal answer: 63") == ("plan", "wrong_operation", 2, False)
    assert kind("17 + 12 = 29.\n29 * 2 = 58.\n58 + 5 = 64.\nFinal answer: 64") == ("plan", "wrong_operation", 2, True)
    assert kind("17 + 12 = 29.\n17 * 2 = 34.\n34 - 5 = 29.\nFinal answer: 29") == ("plan", "wrong_quantity", 1, False)
    assert kind("17 + 12 = 29.\n29 * 3 = 87.\n87 - 5 = 82.\nFinal answer: 82") == ("plan", "unknown_number", 1, False)
    assert kind("17 + 12 = 29.\n29 * 2 = 58.\nFinal answer: 58") == ("plan", "stopped_early", 2, False)
    assert kind(right.replace("Final answer: 53", "53 + 5 = 58.\nFinal answer: 58"))[:2] == ("plan", "extra_step")
    assert kind(right.replace("Final answer: 53", "Final answer: 58"))[:2] == ("plan", "wrong_final")
    assert kind("17 + 12 = 29. Then 29 * 2 = 58 and")[0] == "no_answer"
    assert kind("17 + 12 = 29.\n29 × 2 = 58.\n58 − 5 = 53.\nFinal answer: 53")[0] == "correct"
    assert kind("17 + 12 = 29.\n29 - 5 = 24.\nFinal answer: 24")[:2] == ("plan", "skipped_step")  # no doubling
    skip = {"template": "collection", "level": 3, "start": 8, "steps": [["+", "s", 4], ["*", 3, 5], ["+", "#0", "#1"]]}
    assert classify(skip, "3 * 5 = 15.\n8 + 15 = 23.\nFinal answer: 23")["detail"] == "skipped_step"
    with_digits = [(17, "+", 12, 29), (29, "*", 2, 58)]
    assert equations("17+12=29, then 29 x 2 = 58.\nFinal answer: 58") == with_digits


def test_spec_parsing_cli_and_errors():
    from pathprune.evaluation.sources import generated_suite, load_problems

    assert generated_suite("reasoner:1,2") is reasoner and generated_suite("wordproblems") is wordproblems
    assert generated_suite("runs/reasoner.jsonl") is None and generated_suite(None) is None
    assert parse_spec("reasoner:1,2") == {"levels": (1, 2), "fmt": "final", "suite": "reasoner"}
    assert parse_spec("reasoner")["levels"] == (1, 2, 3, 4, 5, 6)
    problems = load_problems("reasoner:2,7", "validation", per_level=4)
    assert len(problems) == 8 and {p.meta["difficulty"] for p in problems} == {2, 7}
    assert all(p.meta["split"] == "validation" and p.meta["source"] == "reasoner" for p in problems)
    for bad, needle in [("reasoner:9", "levels must lie in 1..8"), ("reasoner:x", "comma-separated"),
                        ("reasoner:1:latex", "unknown answer format")]:
        with pytest.raises(PathpruneError, match=needle):
            parse_spec(bad)
    with pytest.raises(PathpruneError, match="unknown reasoner theme"):
        generate(1, 3, "test", themes=("trains",))


def test_cli_rejects_a_bad_reasoner_spec_in_one_line(tmp_path, capsys):
    assert main(["run", "--out", str(tmp_path / "r"), "--benchmark", "reasoner:0"]) == 2
    err = capsys.readouterr().err
    assert "levels must lie in 1..8" in err and len(err.strip().splitlines()) == 1
