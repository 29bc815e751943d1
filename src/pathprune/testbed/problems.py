"""Deterministic testbed problem sets with hash-based, problem-level splits
(:mod:`pathprune.tasks.splits`: a problem's split is a function of its prompt text alone).

    >>> probs = generate("chain", difficulty=4, n=3, split="test", seed=0)
    >>> [p.meta["split"] for p in probs]
    ['test', 'test', 'test']
"""

from __future__ import annotations

import random

from ..errors import PathpruneError
from ..tasks.problem import Problem
from ..tasks.splits import Split, check_split, split_of, text_digest
from .families import FAMILIES

__all__ = ["check_family", "generate", "split_of", "suite"]  # split_of: re-exported from tasks.splits


def check_family(family: str, difficulty: int | None = None) -> None:
    if family not in FAMILIES:
        raise PathpruneError(f"unknown testbed family {family!r}; choose from {sorted(FAMILIES)}",
                             parameter="family", value=family)
    top = FAMILIES[family].max_difficulty
    if difficulty is not None and not 1 <= difficulty <= top:
        raise PathpruneError(f"difficulty for {family!r} must be in [1, {top}], got {difficulty}",
                             parameter="difficulty", value=difficulty)


def generate(family: str, difficulty: int, n: int, split: Split = "test", seed: int = 0) -> list[Problem]:
    """Up to ``n`` distinct problems of one family, difficulty and split.

    Easy levels hold few distinct problems (chain at difficulty 1 has 210 in
    all), so fewer than ``n`` may come back; never a duplicate.
    """
    check_family(family, difficulty)
    check_split(split)
    fam = FAMILIES[family]
    rng = random.Random(f"{seed}:{family}:{difficulty}")
    out: dict[str, Problem] = {}
    for _ in range(50 * n + 1000):
        if len(out) == n:
            break
        spec = fam.make(rng, difficulty)
        text = " ".join(fam.prompt(spec))
        if text in out or split_of(text) != split:
            continue
        out[text] = Problem(
            id=f"{family}-d{difficulty}-{text_digest(text)}",
            prompt=text,
            answer=fam.solve(spec),
            answer_kind="testbed",
            meta={"family": family, "difficulty": difficulty, "split": split, "spec": spec},
        )
    return list(out.values())


def suite(split: Split = "test", n_per_level: int = 50, seed: int = 0,
          families: tuple[str, ...] | None = None, levels: tuple[int, ...] | None = None) -> list[Problem]:
    """Problems for every family and difficulty level (``levels`` filters)."""
    out: list[Problem] = []
    for name in families or tuple(FAMILIES):
        check_family(name)
        for d in range(1, FAMILIES[name].max_difficulty + 1):
            if levels is None or d in levels:
                out += generate(name, d, n_per_level, split, seed)
    return out
