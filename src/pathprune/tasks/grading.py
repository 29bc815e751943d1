"""Grade extracted answers against reference answers.

Math answers are compared by ``math-verify`` (symbolic equivalence: ``025`` =
``25``, ``\\frac{1}{9}`` = ``1/9``, sets in any order); choices by letter;
testbed answers word for word.
"""

from __future__ import annotations

import threading
from functools import lru_cache

from .answers import extract_answer
from .problem import Problem


def _timeouts() -> dict:
    # math-verify's timeouts use SIGALRM, which only works in the main thread
    # (servers and Ray actors grade in other threads).
    main = threading.current_thread() is threading.main_thread()
    return {"parsing_timeout": 5 if main else None}, {"timeout_seconds": 5 if main else None}


@lru_cache(maxsize=4096)
def _parse_gold(answer: str, main_thread: bool):
    from math_verify import parse

    return parse(f"${answer}$", parsing_timeout=5 if main_thread else None)


def math_equal(reference: str, answer: str) -> bool:
    """True when ``answer`` is mathematically equal to ``reference`` (both LaTeX or plain)."""
    from math_verify import parse, verify

    parse_kw, verify_kw = _timeouts()
    gold = _parse_gold(reference, parse_kw["parsing_timeout"] is not None)
    target = parse(f"${answer}$", **parse_kw)
    if not gold or not target:
        return reference.strip() == answer.strip()
    return bool(verify(gold, target, **verify_kw))


def answers_equal(reference: str, answer: str | None, kind: str) -> bool:
    """Compare an already-extracted answer with the reference."""
    if answer is None:
        return False
    if kind == "math":
        return math_equal(reference, answer)
    if kind == "choice":
        return answer.strip().upper() == reference.strip().upper()
    return " ".join(answer.split()) == " ".join(reference.split())


def grade(problem: Problem, text: str) -> tuple[str | None, bool]:
    """Extract the answer from a model's text and grade it: ``(answer, correct)``."""
    answer = extract_answer(text, problem.answer_kind)
    return answer, answers_equal(problem.answer, answer, problem.answer_kind)
