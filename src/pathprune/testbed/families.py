"""Task families of the testbed: problems, a noisy teacher, and trace analysis.

Every family writes a chain of thought as whitespace-separated words. A trace
starts with a *strategy* word (``S0`` = the right method, ``S1`` = a plausible
misconception applied consistently for the whole trace), then one written step
per operation, each ending in ``;`` (optionally preceded by the doubt marker
``?``), then ``A <answer> <eos>``.

Two error kinds, so that no signal is favoured by construction:

* **slips**: a written step result is wrong (more often on "hard" steps); the
  wrong value propagates because the next step computes from the written one.
  Every operation is a bijection, so one slip always dooms the answer.
* **wrong strategies**: ``S1`` is one not-so-unlikely word, after which every
  step is confident and consistent. Paths with the same misconception agree on
  the same wrong answer, so majority voting can be fooled.

Example::

    >>> fam = FAMILIES["chain"]
    >>> p = fam.make(random.Random(0), difficulty=3)
    >>> " ".join(fam.prompt(p))       # doctest: +SKIP
    'C 6 + 7 * 3 - 9 ='
"""

from __future__ import annotations

import random
from dataclasses import dataclass

STRATEGY_WORDS = ("S0", "S1")
DOUBT = "?"
END_STEP = ";"
ANSWER = "A"


@dataclass(frozen=True)
class NoiseConfig:
    """How often the teacher errs. Defaults are tuned so that sampling the trained
    model at temperature 1 gives pass@1 near 1 at one step and ~0.5 at the
    hardest level (see ``docs/testbed.md``)."""

    p_slip_hard: float = 0.08
    """Probability that a hard step (wrap-around, rotation, swap) is written wrong."""
    p_slip_easy: float = 0.01
    """Probability that an easy step is written wrong."""
    p_strategy_per_trigger: float = 0.15
    """Wrong-strategy probability per trigger operation beyond the first (one trigger: never)."""
    p_strategy_max: float = 0.5
    """Cap on the wrong-strategy probability."""
    p_doubt_after_slip: float = 0.4
    """Probability that the teacher writes ``?`` after a wrong step (a crude "wait")."""
    p_doubt_false_alarm: float = 0.02
    """Probability of ``?`` after a correct step."""


@dataclass
class TraceAnalysis:
    """What a written chain of thought shows, step by step."""

    answer: str | None
    """Text after the last ``A`` (None when no answer was written)."""
    strategy: int | None
    """0 or 1 from the strategy word, None when missing."""
    n_steps: int
    """Number of operations in the problem."""
    first_error_step: int | None = None
    """First step whose written value differs from the correct chain's value."""
    error_kind: str | None = None
    """``"strategy"`` when the first deviation follows the misconception, else ``"slip"``."""
    doubts: int = 0
    """Number of ``?`` markers written."""

    def slipped_before(self, fraction: float) -> bool:
        """True when a step completed within the first ``fraction`` of the chain was wrong
        (so a prefix cut there already contains the error)."""
        return self.first_error_step is not None and (self.first_error_step + 1) <= fraction * self.n_steps


@dataclass(frozen=True)
class ChainProblem:
    start: int
    ops: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class ListProblem:
    start: tuple[int, ...]
    ops: tuple[tuple[str, ...], ...]


def _off_by_one(value: int, rng: random.Random) -> int:
    return (value + rng.choice((-1, 1))) % 10


def _parse_int(word: str) -> int | None:
    return int(word) if word.isdigit() and len(word) == 1 else None


def _split_steps(words: list[str]) -> tuple[int | None, list[list[str]], str | None, int]:
    """Split a completion into (strategy, step word lists, answer, doubts)."""
    strategy = None
    if words and words[0] in STRATEGY_WORDS:
        strategy = STRATEGY_WORDS.index(words[0])
        words = words[1:]
    answer = None
    if ANSWER in words:
        cut = len(words) - 1 - words[::-1].index(ANSWER)
        answer = " ".join(w for w in words[cut + 1 :] if w not in ("<eos>", "<pad>")) or None
        words = words[:cut]
    steps, cur, doubts = [], [], 0
    for w in words:
        if w == END_STEP:
            steps.append(cur)
            cur = []
        elif w == DOUBT:
            doubts += 1
        else:
            cur.append(w)
    if cur:
        steps.append(cur)
    return strategy, steps, answer, doubts


class ChainFamily:
    """Modular arithmetic chains (mod 10): ``C 3 + 4 * 7 - 2 =`` → ``S0 3 + 4 = 7 ; 7 * 7 = 9 ; 9 - 2 = 7 ; A 7``.

    Multiplication is only by 3, 7 or 9 (units of Z/10) so every step is a
    bijection. Hard steps wrap around. The misconception (``S1``) computes
    ``x - y`` with ``x < y`` as the absolute difference ``y - x``; its
    probability grows with the number of subtractions in the prompt.
    """

    name = "chain"
    letter = "C"
    max_difficulty = 10

    def make(self, rng: random.Random, difficulty: int) -> ChainProblem:
        ops = []
        for _ in range(difficulty):
            op = rng.choice("+-*")
            ops.append((op, rng.choice((3, 7, 9)) if op == "*" else rng.randint(1, 9)))
        return ChainProblem(rng.randint(0, 9), tuple(ops))

    def prompt(self, p: ChainProblem) -> list[str]:
        words = [self.letter, str(p.start)]
        for op, y in p.ops:
            words += [op, str(y)]
        return words + ["="]

    @staticmethod
    def apply(x: int, op: str, y: int, strategy: int = 0) -> int:
        if op == "+":
            return (x + y) % 10
        if op == "*":
            return (x * y) % 10
        if strategy == 1 and x < y:
            return y - x
        return (x - y) % 10

    @staticmethod
    def is_hard(x: int, op: str, y: int) -> bool:
        return (op == "+" and x + y >= 10) or (op == "-" and x < y) or (op == "*" and x * y >= 10)

    def values(self, p: ChainProblem, strategy: int = 0) -> list[int]:
        """Running values after each step when computed without slips."""
        x, out = p.start, []
        for op, y in p.ops:
            x = self.apply(x, op, y, strategy)
            out.append(x)
        return out

    def solve(self, p: ChainProblem) -> str:
        return str(self.values(p)[-1])

    def strategy_probability(self, p: ChainProblem, noise: NoiseConfig) -> float:
        n_sub = sum(op == "-" for op, _ in p.ops)
        return min(noise.p_strategy_max, noise.p_strategy_per_trigger * max(0, n_sub - 1))

    def teacher(self, p: ChainProblem, rng: random.Random, noise: NoiseConfig) -> list[str]:
        strategy = int(rng.random() < self.strategy_probability(p, noise))
        words, x = [STRATEGY_WORDS[strategy]], p.start
        for op, y in p.ops:
            r = self.apply(x, op, y, strategy)
            p_slip = noise.p_slip_hard if self.is_hard(x, op, y) else noise.p_slip_easy
            slipped = rng.random() < p_slip
            if slipped:
                r = _off_by_one(r, rng)
            words += [str(x), op, str(y), "=", str(r)]
            if rng.random() < (noise.p_doubt_after_slip if slipped else noise.p_doubt_false_alarm):
                words.append(DOUBT)
            words.append(END_STEP)
            x = r
        return words + [ANSWER, str(x)]

    def analyse(self, p: ChainProblem, completion: list[str]) -> TraceAnalysis:
        strategy, steps, answer, doubts = _split_steps(completion)
        out = TraceAnalysis(answer, strategy, len(p.ops), doubts=doubts)
        truth, x_true = self.values(p), p.start
        for i, (op, y) in enumerate(p.ops):
            written = _parse_int(steps[i][-1]) if i < len(steps) and steps[i] else None
            if written != truth[i]:
                misconceived = (strategy == 1 and op == "-" and x_true < y
                                and written == self.apply(x_true, op, y, 1))
                out.first_error_step, out.error_kind = i, ("strategy" if misconceived else "slip")
                break
            x_true = truth[i]
        return out


class ListFamily:
    """List manipulation on 4 digits: ``L 3 1 4 2 | rot swp 1 3 =`` → ``S0 rot > 1 4 2 3 ; swp 1 3 > 2 4 1 3 ; A 2 4 1 3``.

    Operations: ``rev`` (reverse), ``rot`` (rotate left by one), ``swp i j``
    (swap positions i and j, 1-based) and ``inc i`` (add 1 mod 10 at i). Hard
    steps are rotations, swaps and ``inc`` of a 9. The misconception (``S1``)
    rotates right instead of left; its probability grows with the number of
    rotations in the prompt.
    """

    name = "list"
    letter = "L"
    max_difficulty = 8
    length = 4

    def make(self, rng: random.Random, difficulty: int) -> ListProblem:
        ops = []
        for _ in range(difficulty):
            kind = rng.choice(("rev", "rot", "swp", "inc"))
            if kind == "swp":
                i, j = sorted(rng.sample(range(1, self.length + 1), 2))
                ops.append((kind, str(i), str(j)))
            elif kind == "inc":
                ops.append((kind, str(rng.randint(1, self.length))))
            else:
                ops.append((kind,))
        start = tuple(rng.randint(0, 9) for _ in range(self.length))
        return ListProblem(start, tuple(ops))

    def prompt(self, p: ListProblem) -> list[str]:
        words = [self.letter, *map(str, p.start), "|"]
        for op in p.ops:
            words += list(op)
        return words + ["="]

    @staticmethod
    def apply(xs: tuple[int, ...], op: tuple[str, ...], strategy: int = 0) -> tuple[int, ...]:
        kind = op[0]
        if kind == "rev":
            return xs[::-1]
        if kind == "rot":
            return xs[-1:] + xs[:-1] if strategy == 1 else xs[1:] + xs[:1]
        ys = list(xs)
        if kind == "swp":
            i, j = int(op[1]) - 1, int(op[2]) - 1
            ys[i], ys[j] = ys[j], ys[i]
        else:  # inc
            i = int(op[1]) - 1
            ys[i] = (ys[i] + 1) % 10
        return tuple(ys)

    @staticmethod
    def is_hard(xs: tuple[int, ...], op: tuple[str, ...]) -> bool:
        return op[0] in ("rot", "swp") or (op[0] == "inc" and xs[int(op[1]) - 1] == 9)

    def values(self, p: ListProblem, strategy: int = 0) -> list[tuple[int, ...]]:
        xs, out = p.start, []
        for op in p.ops:
            xs = self.apply(xs, op, strategy)
            out.append(xs)
        return out

    def solve(self, p: ListProblem) -> str:
        return " ".join(map(str, self.values(p)[-1]))

    def strategy_probability(self, p: ListProblem, noise: NoiseConfig) -> float:
        n_rot = sum(op[0] == "rot" for op in p.ops)
        return min(noise.p_strategy_max, noise.p_strategy_per_trigger * max(0, n_rot - 1))

    @staticmethod
    def _corrupt(xs: tuple[int, ...], rng: random.Random) -> tuple[int, ...]:
        """A plausible slip that always changes the list: one digit off by one."""
        ys = list(xs)
        i = rng.randrange(len(ys))
        ys[i] = _off_by_one(ys[i], rng)
        return tuple(ys)

    def teacher(self, p: ListProblem, rng: random.Random, noise: NoiseConfig) -> list[str]:
        strategy = int(rng.random() < self.strategy_probability(p, noise))
        words, xs = [STRATEGY_WORDS[strategy]], p.start
        for op in p.ops:
            ys = self.apply(xs, op, strategy)
            p_slip = noise.p_slip_hard if self.is_hard(xs, op) else noise.p_slip_easy
            slipped = rng.random() < p_slip
            if slipped:
                ys = self._corrupt(ys, rng)
            words += [*op, ">", *map(str, ys)]
            if rng.random() < (noise.p_doubt_after_slip if slipped else noise.p_doubt_false_alarm):
                words.append(DOUBT)
            words.append(END_STEP)
            xs = ys
        return words + [ANSWER, *map(str, xs)]

    def analyse(self, p: ListProblem, completion: list[str]) -> TraceAnalysis:
        strategy, steps, answer, doubts = _split_steps(completion)
        out = TraceAnalysis(answer, strategy, len(p.ops), doubts=doubts)
        truth, xs_true = self.values(p), p.start
        for i, op in enumerate(p.ops):
            step = steps[i] if i < len(steps) else []
            written = tuple(_parse_int(w) for w in step[step.index(">") + 1 :]) if ">" in step else None
            if written != truth[i]:
                misconceived = (strategy == 1 and op[0] == "rot"
                                and written == self.apply(xs_true, op, 1))
                out.first_error_step, out.error_kind = i, ("strategy" if misconceived else "slip")
                break
            xs_true = truth[i]
        return out


FAMILIES: dict[str, ChainFamily | ListFamily] = {f.name: f for f in (ChainFamily(), ListFamily())}
