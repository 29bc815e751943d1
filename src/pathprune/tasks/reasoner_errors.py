"""What went wrong in a worked solution to a reasoner problem: its first error, read against the spec.

:func:`classify` reads a solution's ``a op b = c`` equations (:func:`equations`) in order against the gold
steps (:func:`pathprune.tasks.reasoner.gold_equations`) and names the first one that leaves them
(:data:`KINDS`): an arithmetic slip or a plan error (:data:`PLAN_KINDS`: wrong operation, wrong quantity
carried, a number not in the problem, a step left out or added). Generating problems does not need it, so it
lives apart from :mod:`pathprune.tasks.reasoner`.
"""

from __future__ import annotations

import re

from .answers import final_answer_line
from .reasoner import gold_equations, stated_numbers
from .wordbase import apply

_EQUATION = re.compile(r"(\d+)\s*([+\-*/×x÷−])\s*(\d+)\s*=\s*(\d+)")
_OPS = {"×": "*", "x": "*", "÷": "/", "−": "-"}
KINDS = ("correct", "arithmetic", "plan", "no_answer")
PLAN_KINDS = ("wrong_operation", "wrong_quantity", "unknown_number", "skipped_step", "stopped_early",
              "extra_step", "wrong_final")


def equations(text: str) -> list[tuple[int, str, int, int]]:
    """The ``a op b = c`` equations a solution writes, in order."""
    return [(int(a), _OPS.get(op, op), int(b), int(c)) for a, op, b, c in _EQUATION.findall(text)]


def _same(e, g) -> bool:
    """Same numbers and operation (either order for + and *)."""
    if e[1] != g[1] or e[3] != g[3]:
        return False
    return (e[0], e[2]) == (g[0], g[2]) or (e[1] in "+*" and (e[0], e[2]) == (g[2], g[0]))


def _operands(e) -> list[int]:
    return sorted((e[0], e[2]))


def _value(e) -> int | None:
    """What an equation's left side really equals (None for a division with a remainder)."""
    a, op, b, _ = e
    try:
        return apply(op, a, b)
    except (ValueError, ZeroDivisionError):
        return None


def _later_literal(spec: dict, i: int, e) -> bool:
    """Whether ``e`` does a later step's operation with that step's stated number (this step left out)."""
    here = {x for x in spec["steps"][i][1:] if isinstance(x, int)}
    for op, left, right in spec["steps"][i + 1:]:
        for x in (left, right):
            if isinstance(x, int) and op == e[1] and x in (e[0], e[2]) and x not in here:
                return True
    return False


def _error(kind: str, detail: str | None, step: int | None, slip: bool = False) -> dict:
    return {"kind": kind, "detail": detail, "step": step, "slip": slip}


def classify(spec: dict, text: str, answer: str | None = None) -> dict:
    """The first error of a solution against its spec.

    The solution's equations are read in order against the gold steps; the first
    one that does not give the gold step's value is the error. Returns
    ``{"kind", "detail", "step", "slip"}``. ``kind`` is ``correct``, ``arithmetic``
    (the right numbers and operation, or an equivalent set-up such as ``42 + 42``
    for "twice 42", with a wrong result: a slip), ``plan`` (a set-up that cannot
    give the gold value: the plan went wrong) or ``no_answer`` (no final-answer
    line, every equation written so far right). ``detail`` refines a plan error:
    ``wrong_operation`` (the gold step's numbers with another operation: "fewer"
    read as "more"), ``wrong_quantity`` (the gold step's operation on a stated
    number or an earlier result that is not the right one: a wrong quantity
    carried), ``unknown_number`` (a number neither stated nor computed before),
    ``skipped_step`` (a later gold step, or its operation on its stated number, done
    instead), ``stopped_early`` (fewer
    steps than the plan and a wrong answer), ``extra_step`` (all gold steps, then
    more), ``wrong_final`` (all steps right, another final answer). ``slip`` marks
    a plan error whose equation is also wrong as arithmetic. ``step`` is the
    index of the gold step where the solution left the plan.
    """
    gold = gold_equations(spec)
    reference = gold[-1][3]
    answer = final_answer_line(text) if answer is None else answer
    try:
        value = float(str(answer).replace(",", "")) if answer is not None else None
    except ValueError:
        value = None
    if value is not None and value == reference:
        return _error("correct", None, None)
    found = equations(text.split("Final answer")[0])
    known = stated_numbers(spec)
    for i, e in enumerate(found):
        true = _value(e)
        if i >= len(gold):
            return _error("plan", "extra_step", len(gold) - 1, true != e[3])
        g = gold[i]
        if e[3] == g[3] and true == g[3]:  # the gold step, or an equivalent set-up
            known.add(e[3])
            continue
        if true == g[3]:
            return _error("arithmetic", f"{e[0]} {e[1]} {e[2]} = {e[3]}", i)
        slip = true != e[3]
        if any(_same(e, later) for later in gold[i + 1:]) or _later_literal(spec, i, e):
            return _error("plan", "skipped_step", i, slip)
        if _operands(e) == _operands(g) and e[1] != g[1]:
            return _error("plan", "wrong_operation", i, slip)
        if any(x not in known for x in (e[0], e[2])):
            return _error("plan", "unknown_number", i, slip)
        return _error("plan", "wrong_quantity" if e[1] == g[1] else "wrong_operation", i, slip)
    if answer is None:
        return _error("no_answer", None, min(len(found), len(gold) - 1))
    if len(found) < len(gold):
        return _error("plan", "stopped_early", len(found))
    return _error("plan", "wrong_final", len(gold) - 1)
