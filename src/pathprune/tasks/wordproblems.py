"""Procedural arithmetic word problems at the level of a small instruct model (SmolLM2-135M).

Four templates (``inventory``, ``shopping``, ``sharing``, ``ages``) tell a short
story: a starting quantity, then ``level`` steps, each one arithmetic operation
on the running value (add, subtract, multiply or divide by a small number), then
a question about the final value. Every intermediate value is a positive integer
of at most 200, so the reference answer is exact and ``math-verify`` grades it.

* **Deterministic**: the same (level, n, split, seed, templates) gives the same
  problems in the same order.
* **Disjoint splits**: a problem's split is a SHA-256 bucket of its question
  text (80 / 10 / 10, as in the testbed), so no question lands in two splits,
  whatever seed or level produced it.
* **Specs**: ``meta["spec"]`` holds the start value and the list of
  ``[op, operand]`` steps; the answer is their left fold (:func:`solve`).
* **Answer formats**: ``boxed`` asks for ``\\boxed{}`` (the instruction of
  the benchmark loaders), ``final`` for a last line ``Final answer: N``; both are
  read by the same extractor (:func:`pathprune.tasks.answers.extract_math`).

The command line names this source as a benchmark spec,
``--benchmark wordproblems[:LEVELS[:FORMAT]]`` (e.g. ``wordproblems:1,2`` or
``wordproblems:1:final``), with the split from ``--testbed-split``, the count per
level from ``--per-level`` and the seed from ``--seed``.

    >>> [p.answer for p in generate(1, 2, "test", seed=0)]  # doctest: +SKIP
"""

from __future__ import annotations

import random
from collections.abc import Callable

from .problem import Problem
from .wordbase import DEFAULT_FORMAT, FORMATS, WordSuite, apply  # noqa: F401  (FORMATS: re-exported for callers)
from .wordbase import NAMES as _NAMES
from .wordbase import PRONOUN as _PRONOUN

MAX_LEVEL = 5
DEFAULT_LEVELS = (1, 2, 3)
MAX_VALUE = 200
_ITEMS = ("apples", "marbles", "stickers", "pencils", "stamps", "shells", "cards", "books")
_THINGS = (("pen", "pens"), ("notebook", "notebooks"), ("cup", "cups"), ("ball", "balls"), ("toy car", "toy cars"))
_TREATS = ("cookies", "muffins", "candies", "cupcakes")


def solve(spec: dict) -> int:
    """The answer of a spec: its steps folded over the start value."""
    value = spec["start"]
    for op, operand in spec["steps"]:
        value = apply(op, value, operand)
    return value


def _pron(name: str) -> str:
    return _PRONOUN.get(name, "He")


# Each step builder gets (rng, current value, context) and returns (op, operand, sentence), or None when no
# operation of its kind fits the current value (the generator then tries another kind).
Step = Callable[[random.Random, int, dict], "tuple[str, int, str] | None"]


def _inv_add(rng, v, c):
    b = rng.randint(2, 20)
    verb = rng.choice(("buys", "finds", "gets"))
    return "+", b, f"{c['P']} {verb} {b} more {c['item']}."


def _inv_sub(rng, v, c):
    if v < 3:
        return None
    b = rng.randint(1, min(v - 1, 20))
    return "-", b, rng.choice((f"{c['P']} gives {b} {c['item']} to {c['friend']}.", f"{c['P']} loses {b} {c['item']}."))


def _inv_mul(rng, v, c):
    m = rng.choice((2, 3))
    if v * m > MAX_VALUE:
        return None
    word = {2: "doubles", 3: "triples"}[m]
    return "*", m, f"Then the number of {c['item']} {c['name']} has {word}."


def _inv_div(rng, v, c):
    if v % 2 or v < 4:
        return None
    return "/", 2, f"{c['P']} gives half of the {c['item']} to {c['friend']}."


def _shop_one(rng, v, c):
    if v < 3:
        return None
    p = rng.randint(2, min(v - 1, 15))
    thing = rng.choice(_THINGS)[0]
    return "-", p, f"{c['P']} buys a {thing} for {p} dollars."


def _shop_earn(rng, v, c):
    b = rng.randint(2, 20)
    return "+", b, f"{c['P']} earns {b} dollars helping a neighbour."


def _shop_double(rng, v, c):
    if v * 2 > MAX_VALUE:
        return None
    return "*", 2, f"{c['P']} sells an old bike, and now has twice as much money."


def _shop_split(rng, v, c):
    if v % 2 or v < 4:
        return None
    return "/", 2, f"{c['P']} puts half of the money into a savings box and does not spend it."


def _share_add(rng, v, c):
    b = rng.randint(2, 20)
    return "+", b, f"{c['P']} bakes {b} more {c['treat']}."


def _share_sub(rng, v, c):
    if v < 3:
        return None
    b = rng.randint(1, min(v - 1, 12))
    return "-", b, rng.choice((f"{c['P']} eats {b} of them.", f"{c['friend']} eats {b} of them."))


def _share_div(rng, v, c):
    ways = [k for k in (2, 3, 4, 5, 6) if v % k == 0 and v // k >= 1]
    if not ways:
        return None
    k = rng.choice(ways)
    return "/", k, f"{c['P']} puts the {c['treat']} into {k} boxes with the same number in each."


def _age_older(rng, v, c):
    b = rng.randint(1, 15)
    return "+", b, f"{c['next']} is {b} years older than {c['prev']}."


def _age_younger(rng, v, c):
    if v < 3:
        return None
    b = rng.randint(1, min(v - 1, 15))
    return "-", b, f"{c['next']} is {b} years younger than {c['prev']}."


def _age_twice(rng, v, c):
    if v * 2 > 90:
        return None
    return "*", 2, f"{c['next']} is twice as old as {c['prev']}."


def _age_half(rng, v, c):
    if v % 2 or v < 4:
        return None
    return "/", 2, f"{c['next']} is half as old as {c['prev']}."


TEMPLATES: dict[str, tuple[Step, ...]] = {
    "inventory": (_inv_add, _inv_sub, _inv_mul, _inv_div),
    "shopping": (_shop_one, _shop_earn, _shop_double, _shop_split),
    "sharing": (_share_add, _share_sub),  # the last step always shares equally (_share_div)
    "ages": (_age_older, _age_younger, _age_twice, _age_half),
}


def _story(rng: random.Random, template: str, level: int) -> tuple[dict, str, dict] | None:
    people = rng.sample(_NAMES, 6)
    name = people[0]
    c = {"name": name, "P": name if rng.random() < 0.5 else _pron(name), "friend": people[1],
         "item": rng.choice(_ITEMS), "treat": rng.choice(_TREATS)}
    start = rng.randint(4, 30) if template != "ages" else rng.randint(5, 40)
    opening = {
        "inventory": f"{name} has {start} {c['item']}.",
        "shopping": f"{name} has {start} dollars.",
        "sharing": f"{name} bakes {start} {c['treat']}.",
        "ages": f"{name} is {start} years old.",
    }[template]
    sentences, steps, value = [opening], [], start
    for i in range(level):
        c["prev"], c["next"] = people[i], people[i + 1]
        last_share = template == "sharing" and i == level - 1
        kinds = (_share_div,) if last_share else TEMPLATES[template]
        for _ in range(10):
            made = rng.choice(kinds)(rng, value, c)
            if made is not None:
                break
        else:
            return None
        op, operand, sentence = made
        if sentence in sentences:  # "He gives half ... He gives half ..." reads like a typo; draw again
            return None
        value = apply(op, value, operand)
        if not 1 <= value <= MAX_VALUE:
            return None
        steps.append([op, operand])
        sentences.append(sentence)
    question = {
        "inventory": f"How many {c['item']} does {name} have now?",
        "shopping": f"How many dollars does {name} have left to spend?",
        "sharing": f"How many {c['treat']} are in each box?",
        "ages": f"How old is {people[level]}?",
    }[template]
    spec = {"template": template, "level": level, "start": start, "steps": steps}
    return spec, " ".join(sentences + [question]), {}  # no meta beyond the shared fields


_SUITE = WordSuite(name="wordproblems", label="word-problem", family_word="template", id_prefix="wp",
                   families=tuple(TEMPLATES), listed=tuple(sorted(TEMPLATES)), max_level=MAX_LEVEL,
                   default_levels=DEFAULT_LEVELS, attempts=(200, 1000), story=_story, solve=solve)


def check_args(levels, split: str | None = None, fmt: str = DEFAULT_FORMAT, templates=None) -> None:
    _SUITE.check_args(levels, split, fmt, templates)


def generate(level: int, n: int, split: str = "test", seed: int = 0, templates: tuple[str, ...] | None = None,
             fmt: str = DEFAULT_FORMAT) -> list[Problem]:
    """``n`` distinct problems of one level (steps) and split, the templates drawn in turn."""
    return _SUITE.generate(level, n, split, seed, templates, fmt)


def suite(split: str = "test", n_per_level: int = 20, seed: int = 0, levels=DEFAULT_LEVELS,
          templates: tuple[str, ...] | None = None, fmt: str = DEFAULT_FORMAT) -> list[Problem]:
    """``n_per_level`` problems for every level in ``levels``, interleaved so a prefix of the list mixes them."""
    return _SUITE.suite(split, n_per_level, seed, levels, templates, fmt)


def parse_spec(spec: str) -> dict:
    """``wordproblems[:LEVELS[:FORMAT]]`` → ``{"levels": (...), "fmt": ...}`` (one-line error otherwise)."""
    return _SUITE.parse_spec(spec)


def from_spec(spec: str, split: str, n_per_level: int, seed: int) -> list[Problem]:
    """Problems for a ``--benchmark wordproblems[:LEVELS[:FORMAT]]`` spec."""
    return _SUITE.from_spec(spec, split, n_per_level, seed)
