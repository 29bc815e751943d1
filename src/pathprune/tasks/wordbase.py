"""What the two word-problem suites share: answer formats, people's names, the four operations and the suite
machinery (argument checks, seeded generation, interleaved suites, ``NAME[:LEVELS[:FORMAT]]`` specs).

:mod:`pathprune.tasks.wordproblems` (one running value) and :mod:`pathprune.tasks.reasoner` (worked
solutions, two people) each describe themselves as a :class:`WordSuite` (their stories, levels, names and
wording) and keep their public functions as thin wrappers around its methods, so neither imports the other's
module for them.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import PathpruneError
from .loaders import MATH_INSTRUCTION
from .problem import Problem
from .splits import check_split, split_of, text_digest

FORMATS = {
    "boxed": MATH_INSTRUCTION,
    "final": 'Please reason step by step, and end your reply with a line of the form "Final answer: <number>".',
}
DEFAULT_FORMAT = "final"  # SmolLM2-135M follows it on 84 % of paths, boxed on 2 % (docs/smollm2.md)

NAMES = ("Anna", "Ben", "Carla", "David", "Emma", "Felix", "Grace", "Hugo", "Ivy", "Jack", "Lena", "Mia", "Noah",
         "Omar", "Paula", "Sam", "Tara", "Leo")
PRONOUN = {"Anna": "She", "Carla": "She", "Emma": "She", "Grace": "She", "Ivy": "She", "Lena": "She", "Mia": "She",
           "Paula": "She", "Tara": "She"}


def apply(op: str, value: int, operand: int) -> int:
    """One arithmetic step on integers (a division must come out even)."""
    if op == "+":
        return value + operand
    if op == "-":
        return value - operand
    if op == "*":
        return value * operand
    if op == "/":
        if value % operand:
            raise ValueError(f"{value} is not divisible by {operand}")
        return value // operand
    raise ValueError(f"unknown operation {op!r}")


# A story: (rng, family, level) -> (spec, question text, extra meta fields), or None when the draw failed.
Story = Callable[[random.Random, str, int], "tuple[dict, str, dict] | None"]


@dataclass(frozen=True)
class WordSuite:
    """One word-problem suite: what sets it apart, and the machinery both suites run on it.

    Everything the two suites do differently is a field here, so one implementation keeps both suites'
    problems, order and error messages as they were (the shipped reasoner adapter's SFT pool is pinned by id).
    """

    name: str
    """Spec head (``NAME[:LEVELS[:FORMAT]]``), ``meta["source"]`` and the rng salt (``NAME:SEED:LEVEL``)."""
    label: str
    """How error messages name the suite ("word-problem levels must ...")."""
    family_word: str
    """How error messages name one kind of story ("template", "theme")."""
    id_prefix: str
    families: tuple[str, ...]
    """The kinds of story, in the order generation cycles through them."""
    listed: tuple[str, ...]
    """The same, in the order an unknown-name error lists them."""
    max_level: int
    default_levels: tuple[int, ...]
    attempts: tuple[int, int]
    """``(a, b)``: story draws allowed for ``n`` problems are ``a * n + b``."""
    story: Story
    solve: Callable[[dict], int]
    tag_spec: bool = False
    """Whether :meth:`parse_spec` adds ``"suite": name`` to its result."""

    def check_args(self, levels, split: str | None = None, fmt: str = DEFAULT_FORMAT, families=None) -> None:
        bad = [x for x in levels if not 1 <= x <= self.max_level]
        if bad or not levels:
            raise PathpruneError(f"{self.label} levels must lie in 1..{self.max_level}, got {list(levels)}",
                                 parameter="levels", value=levels)
        if split is not None:
            check_split(split)
        if fmt not in FORMATS:
            raise PathpruneError(f"unknown answer format {fmt!r}; choose from {sorted(FORMATS)}", parameter="format",
                                 value=fmt)
        unknown = [t for t in families or () if t not in self.families]
        if unknown:
            raise PathpruneError(f"unknown {self.label} {self.family_word} {unknown[0]!r}; choose from "
                                 f"{list(self.listed)}", parameter="templates", value=unknown[0])

    def generate(self, level: int, n: int, split: str = "test", seed: int = 0,
                 families: tuple[str, ...] | None = None, fmt: str = DEFAULT_FORMAT) -> list[Problem]:
        """``n`` distinct problems of one level (steps) and split, the families drawn in turn."""
        self.check_args([level], split, fmt, families)
        names = tuple(families or self.families)
        rng = random.Random(f"{self.name}:{seed}:{level}")
        out: dict[str, Problem] = {}
        per_problem, fixed = self.attempts
        for _ in range(per_problem * n + fixed):
            if len(out) == n:
                break
            family = names[len(out) % len(names)]
            made = self.story(rng, family, level)
            if made is None:
                continue
            spec, text, extra = made
            # the split is a hash of the text (so splits are disjoint): a draw that hashes elsewhere is skipped
            if text in out or split_of(text) != split:
                continue
            out[text] = Problem(
                id=f"{self.id_prefix}-{family}-s{level}-{text_digest(text)}",
                answer=str(self.solve(spec)),
                answer_kind="math",
                messages=({"role": "user", "content": f"{text}\n{FORMATS[fmt]}"},),
                meta={"source": self.name, "family": family, "difficulty": level, "split": split, "format": fmt,
                      "question": text, "spec": spec, **extra},
            )
        return list(out.values())

    def suite(self, split: str = "test", n_per_level: int = 20, seed: int = 0, levels=None,
              families: tuple[str, ...] | None = None, fmt: str = DEFAULT_FORMAT) -> list[Problem]:
        """``n_per_level`` problems for every level in ``levels``, interleaved so a prefix of the list mixes them."""
        levels = self.default_levels if levels is None else levels
        self.check_args(levels, split, fmt, families)
        per = [self.generate(level, n_per_level, split, seed, families, fmt) for level in levels]
        return [p for group in zip(*per) for p in group] + [p for group in per for p in group[min(map(len, per)):]]

    def parse_spec(self, spec: str) -> dict:
        """``NAME[:LEVELS[:FORMAT]]`` → ``{"levels": (...), "fmt": ...}`` (one-line error otherwise)."""
        parts = spec.split(":")
        if parts[0] != self.name or len(parts) > 3:
            raise PathpruneError(f"expected {self.name}[:LEVELS[:FORMAT]], got {spec!r}", parameter="benchmark",
                                 value=spec)
        levels = self.default_levels
        if len(parts) > 1 and parts[1]:
            try:
                levels = tuple(int(x) for x in parts[1].split(",") if x.strip())
            except ValueError:
                raise PathpruneError(f"{self.label} levels must be comma-separated integers, got {parts[1]!r}",
                                     parameter="benchmark", value=spec) from None
        fmt = parts[2] if len(parts) > 2 else DEFAULT_FORMAT
        self.check_args(levels, None, fmt)
        return {"levels": levels, "fmt": fmt, **({"suite": self.name} if self.tag_spec else {})}

    def from_spec(self, spec: str, split: str, n_per_level: int, seed: int) -> list[Problem]:
        """Problems for a ``--benchmark NAME[:LEVELS[:FORMAT]]`` spec."""
        parsed = self.parse_spec(spec)
        if n_per_level < 1:
            raise PathpruneError(f"--per-level must be >= 1, got {n_per_level}", parameter="per_level",
                                 value=n_per_level)
        return self.suite(split, n_per_level, seed, parsed["levels"], fmt=parsed["fmt"])
