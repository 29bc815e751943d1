"""Answer extraction, grading with math-verify, and benchmark loaders on the real files."""

import json

import pytest

from pathprune.errors import PathpruneError
from pathprune.tasks import answers_equal, extract_answer, grade, load_benchmark
from pathprune.tasks.problem import Problem

FILES = ["aime_2024.json", "aime_2025.json", "brumo_2025.json", "hmmt_25.json", "zebralogic_hard.json"]


@pytest.mark.parametrize(
    "text, kind, expected",
    [
        (r"so \boxed{\frac{1}{9}} and then \boxed{2^{99}}.", "math", r"2^{99}"),
        (r"nested \boxed{\sqrt{\frac{95}{24}}} end", "math", r"\sqrt{\frac{95}{24}}"),
        ("Work...\nFinal Answer: 42.", "math", "42"),
        ("The answer is $17$", "math", "17"),
        ("no answer here", "math", None),
        (r"unclosed \boxed{12", "math", None),
        ('reasoning "ANSWER": "C"', "choice", "C"),
        ("so the answer is (B).", "choice", "B"),
        ("the answer is a bit unclear", "choice", None),
        ("S0 3 + 4 = 7 ; A 7 <eos>", "testbed", "7"),
        ("S0 rot > 1 4 2 3 ; A 1 4 2 3", "testbed", "1 4 2 3"),
        ("S0 3 + 4 = 7 ;", "testbed", None),
    ],
)
def test_extract_answer(text, kind, expected):
    assert extract_answer(text, kind) == expected


def test_math_equivalence_hand_cases():
    assert answers_equal("025", "25", "math")
    assert answers_equal(r"\frac{1}{9}", "1/9", "math")
    assert not answers_equal(r"2^{99}", r"2^{98}", "math")
    assert not answers_equal("70", None, "math")
    assert answers_equal("c", "C", "choice") and not answers_equal("C", "D", "choice")
    assert not answers_equal("1 4 2 3", "1 4 2", "testbed")


def _perturb(answer: str, kind: str) -> str:
    if kind == "choice":
        return "A" if answer != "A" else "B"
    return f"({answer})+1"


@pytest.mark.parametrize("name", FILES)
def test_every_reference_grades_right_and_perturbed_wrong(benchmarks_dir, name):
    problems = load_benchmark(benchmarks_dir / name)
    assert len({p.id for p in problems}) == len(problems)
    for p in problems:
        response = (f'Reasoning... "ANSWER": "{p.answer}"' if p.answer_kind == "choice"
                    else f"Reasoning... so the result is \\boxed{{{p.answer}}}.")
        assert grade(p, response) == (p.answer, True), p.id
        assert not answers_equal(p.answer, _perturb(p.answer, p.answer_kind), p.answer_kind), p.id


def test_loader_schemas(benchmarks_dir):
    aime24 = load_benchmark(benchmarks_dir / "aime_2024.json")
    assert aime24[0].id == "2024-1-1" and str(aime24[0].meta["year"]) == "2024"
    assert r"\boxed{}" in aime24[0].messages[0]["content"]
    zebra = load_benchmark(benchmarks_dir / "zebralogic_hard.json", limit=3)
    assert zebra[0].answer_kind == "choice" and "Options:" in zebra[0].messages[0]["content"]
    assert set(zebra[0].meta["options"]) >= {zebra[0].answer}


def test_gsm8k_jsonl_and_errors(tmp_path):
    f = tmp_path / "gsm.jsonl"
    f.write_text(json.dumps({"question": "2+2?", "answer": "2 and 2\n#### 1,004"}) + "\n\n"
                 + json.dumps({"question": "3+3?", "answer": "#### 6"}) + "\n")
    probs = load_benchmark(f)
    assert [p.answer for p in probs] == ["1004", "6"] and probs[1].id == "gsm-1"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "x", "answer": "1"}\n{oops\n')
    with pytest.raises(PathpruneError, match="bad.jsonl: line 2 is not valid JSON"):
        load_benchmark(bad)
    missing = tmp_path / "missing.json"
    missing.write_text(json.dumps([{"problem": "x"}]))
    with pytest.raises(PathpruneError, match="record 0: no 'answer' field"):
        load_benchmark(missing)
    wrong_choice = tmp_path / "choice.json"
    wrong_choice.write_text(json.dumps([{"problem": "x", "options": {"A": "1", "B": "2"}, "answer": "Z"}]))
    with pytest.raises(PathpruneError, match="not one of the options"):
        load_benchmark(wrong_choice)
    with pytest.raises(PathpruneError, match="not found"):
        load_benchmark(tmp_path / "nope.json")


def test_problem_needs_exactly_one_prompt_form():
    with pytest.raises(ValueError):
        Problem("x", "1")
