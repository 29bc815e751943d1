"""Word problems with worked solutions, for training and measuring a step-by-step reasoner (``reasoner`` suite).

The default word problems (:mod:`pathprune.tasks.wordproblems`) fold one running
value; a model can only slip in its arithmetic there. These problems have more
operations and two people, so a model can also get the *plan* wrong:

* **operations**: gain and loss, doubling and tripling, halving, "gives away a
  third of them" (a part, then what is left), rates ("4 packs of 6", "8 dollars
  an hour for 5 hours", "3 pens at 4 dollars each"), comparisons that bring in a
  second person ("Ben has 5 fewer", "twice as many", "a third as many"), a
  transfer between the two, and questions that combine them ("together", "how
  many more") or share the result out;
* **level** = the number of arithmetic steps (1 to :data:`MAX_LEVEL`); every
  step feeds the answer (no distractor steps), and every intermediate value is
  an integer from 2 to :data:`MAX_VALUE`;
* **gold worked solution** (``meta["solution"]``): one sentence per step with
  its equation and value ("Anna buys 12 more, so she has 17 + 12 = 29 marbles."),
  then the line ``Final answer: N`` of the default ``final`` format;
* **spec** (``meta["spec"]``): the start value and the steps ``[op, left, right]``,
  whose operands are numbers stated in the problem or earlier results
  (``"s"`` = the start value, ``"#i"`` = step i's result); :func:`solve` folds
  them, :func:`gold_equations` lists each step's numbers, and
  :func:`pathprune.tasks.reasoner_errors.classify` tells a wrong solution's first
  error: an arithmetic slip or a plan error (wrong operation, wrong quantity
  carried, a number not in the problem, a step left out or added);
* deterministic by seed, split-disjoint by the same SHA-256 rule as every other
  problem source (:mod:`pathprune.tasks.splits`).

On the command line the suite is ``--benchmark reasoner[:LEVELS[:FORMAT]]``
(e.g. ``reasoner:1,2,3``), with ``--testbed-split``, ``--per-level`` and ``--seed``.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from .problem import Problem
from .wordbase import DEFAULT_FORMAT, WordSuite, apply
from .wordbase import NAMES as _NAMES
from .wordbase import PRONOUN as _PRONOUN

MAX_LEVEL = 8
DEFAULT_LEVELS = (1, 2, 3, 4, 5, 6)
MAX_VALUE = 200
THEMES = ("collection", "money", "baking", "farm")
_FRACTION = {2: "half", 3: "a third", 4: "a quarter"}
_TIMES = {2: "twice", 3: "three times"}
_UNITS = {
    "collection": ("marbles", "stickers", "cards", "stamps", "shells", "beads"),
    "money": ("dollars",),
    "baking": ("cookies", "muffins", "cupcakes", "biscuits"),
    "farm": ("apples", "eggs", "oranges", "potatoes"),
}
_BOX = {"collection": ("pack", "packs"), "baking": ("tray", "trays"), "farm": ("basket", "baskets")}
_THINGS = (("pen", "pens"), ("notebook", "notebooks"), ("cup", "cups"), ("ball", "balls"), ("kite", "kites"))


def _val(spec_or_values, ref):
    """The value of an operand: a stated number, the start value ``"s"`` or step ``"#i"``'s result."""
    start, values = spec_or_values
    if isinstance(ref, int):
        return ref
    if ref == "s":
        return start
    return values[int(ref[1:])]


def step_values(spec: dict) -> list[int]:
    """Every step's result, in order."""
    values: list[int] = []
    for op, left, right in spec["steps"]:
        values.append(apply(op, _val((spec["start"], values), left), _val((spec["start"], values), right)))
    return values


def solve(spec: dict) -> int:
    """The answer of a spec: its last step's result."""
    return step_values(spec)[-1]


def gold_equations(spec: dict) -> list[tuple[int, str, int, int]]:
    """``(left, op, right, result)`` of every step, with the numbers filled in."""
    values = step_values(spec)
    out = []
    for (op, left, right), result in zip(spec["steps"], values):
        out.append((_val((spec["start"], values), left), op, _val((spec["start"], values), right), result))
    return out


def stated_numbers(spec: dict) -> set[int]:
    """The numbers the problem states (its start value and literal operands, words such as "twice" included)."""
    return {spec["start"]} | {x for _, left, right in spec["steps"] for x in (left, right) if isinstance(x, int)}


class _Story:
    """One problem under construction: people, sentences, steps and the gold solution's lines."""

    def __init__(self, rng: random.Random, theme: str, level: int):
        self.rng, self.theme, self.level = rng, theme, level
        people = rng.sample(_NAMES, 4)
        self.name = {"A": people[0], "B": people[1]}
        self.friend = people[2]
        self.unit = rng.choice(_UNITS[theme])
        self.box = _BOX.get(theme)
        self.start = rng.randint(10, 60) if theme == "money" else rng.randint(4, 40)
        self.ref: dict[str, str | None] = {"A": "s", "B": None}
        self.focus = "A"
        self.steps: list[list] = []
        self.values: list[int] = []
        self.sentences = [self._opening()]
        self.gold: list[str] = []

    # -- helpers -------------------------------------------------------------------------------------------
    def value(self, ref) -> int:
        return _val((self.start, self.values), ref)

    def pro(self, who: str) -> str:
        return _PRONOUN.get(self.name[who], "He").lower()

    def pos(self, who: str) -> str:
        return "her" if self.pro(who) == "she" else "his"

    def room(self) -> int:
        return self.level - len(self.steps)

    def eq(self, op: str, left, right) -> tuple[str, int, str] | None:
        """Add a step; returns (its ref, its value, its equation text), or None when the value is out of range."""
        a, b = self.value(left), self.value(right)
        if op == "/" and (b == 0 or a % b):
            return None
        result = apply(op, a, b)
        if not 2 <= result <= MAX_VALUE:  # "1 eggs" reads wrong; 0 and negatives are not counts
            return None
        self.steps.append([op, left, right])
        self.values.append(result)
        return f"#{len(self.steps) - 1}", result, f"{a} {op} {b} = {result}"

    def _opening(self) -> str:
        a = self.name["A"]
        return {"money": f"{a} has {self.start} dollars.", "baking": f"{a} bakes {self.start} {self.unit}.",
                "farm": f"{a} picks {self.start} {self.unit}."}.get(self.theme, f"{a} has {self.start} {self.unit}.")

    def question_for(self, who: str) -> str:
        x = self.name[who]
        if self.theme == "money":
            return f"How many dollars does {x} have now?"
        return f"How many {self.unit} does {x} have now?"


# -- events: each adds one or two steps, a problem sentence and the gold lines; None when it does not fit --------
Event = Callable[[_Story], "bool"]


def _undo(s: _Story, n_steps: int) -> None:
    del s.steps[len(s.steps) - n_steps:], s.values[len(s.values) - n_steps:]


def _ev_gain(s: _Story) -> bool:
    who, n = s.focus, s.rng.randint(2, 20)
    x, cur = s.name[who], s.ref[who]
    made = s.eq("+", cur, n)
    if made is None:
        return False
    ref, r, text = made
    sentence, verb = {
        "money": (f"{x} earns {n} dollars helping a neighbour.", f"{x} earns {n} dollars"),
        "baking": (f"{x} bakes {n} more {s.unit}.", f"{x} bakes {n} more"),
        "farm": (f"{x} picks {n} more {s.unit}.", f"{x} picks {n} more"),
    }.get(s.theme, (s.rng.choice((f"{x} buys {n} more {s.unit}.", f"{x} finds {n} more {s.unit}.",
                                  f"{s.friend} gives {x} {n} {s.unit}.")), f"{x} gets {n} more"))
    s.sentences.append(sentence)
    s.gold.append(f"{verb}, so {s.pro(who)} has {text} {s.unit}.")
    s.ref[who] = ref
    return True


def _ev_lose(s: _Story) -> bool:
    who = s.focus
    x, cur, v = s.name[who], s.ref[who], s.value(s.ref[who])
    if v < 4:
        return False
    n = s.rng.randint(2, min(v - 2, 20))
    ref, r, text = s.eq("-", cur, n)
    if s.theme == "money":
        thing = s.rng.choice(_THINGS)[0]
        sentence, verb = f"{x} spends {n} dollars on a {thing}.", f"{x} spends {n} dollars"
    elif s.theme == "baking":
        sentence = s.rng.choice((f"{x} eats {n} of the {s.unit}.", f"{x} sells {n} {s.unit}."))
        verb = f"{x} {'eats' if 'eats' in sentence else 'sells'} {n}"
    elif s.theme == "farm":
        sentence, verb = f"{x} sells {n} {s.unit} at the market.", f"{x} sells {n}"
    else:
        sentence = s.rng.choice((f"{x} gives {n} {s.unit} to {s.friend}.", f"{x} loses {n} {s.unit}."))
        verb = f"{x} {'gives away' if 'gives' in sentence else 'loses'} {n}"
    s.sentences.append(sentence)
    s.gold.append(f"{verb}, so {s.pro(who)} has {text} {s.unit} left.")
    s.ref[who] = ref
    return True


def _ev_times(s: _Story) -> bool:
    who, k = s.focus, s.rng.choice((2, 3))
    x = s.name[who]
    made = s.eq("*", s.ref[who], k)
    if made is None:
        return False
    ref, r, text = made
    word = {2: "doubles", 3: "triples"}[k]
    if s.theme == "money":
        sentence = f"{x} sells an old bike, and now {s.pro(who)} has {_TIMES[k]} as much money."
    elif s.theme in ("baking", "farm"):
        sentence = f"By the evening, the number of {s.unit} {x} has {word}."
    else:
        sentence = f"After a game, the number of {s.unit} {x} has {word}."
    s.sentences.append(sentence)
    s.gold.append(f"The amount {word}, so {x} has {text} {s.unit}.")
    s.ref[who] = ref
    return True


def _ev_halve(s: _Story) -> bool:
    who = s.focus
    x = s.name[who]
    made = s.eq("/", s.ref[who], 2)
    if made is None:
        return False
    ref, r, text = made
    if s.theme == "money":
        sentence = f"{x} puts half of {s.pos(who)} money into a savings box and does not spend it."
        gold = f"Half of the money goes into the box, so {x} has {text} dollars to spend."
    else:
        sentence = f"{x} gives half of {s.pos(who)} {s.unit} to {s.friend}."
        gold = f"{x} gives away half, so {s.pro(who)} has {text} {s.unit} left."
    s.sentences.append(sentence)
    s.gold.append(gold)
    s.ref[who] = ref
    return True


def _ev_part(s: _Story) -> bool:
    """Gives away a third (a quarter, half) of them: the part, then what is left (two steps)."""
    if s.room() < 2:
        return False
    who, k = s.focus, s.rng.choice((3, 4, 2))
    x, cur = s.name[who], s.ref[who]
    made = s.eq("/", cur, k)
    if made is None:
        return False
    part_ref, part, t1 = made
    made = s.eq("-", cur, part_ref)
    if made is None:
        _undo(s, 1)
        return False
    ref, r, t2 = made
    frac = _FRACTION[k]
    if s.theme == "money":
        s.sentences.append(f"{x} spends {frac} of {s.pos(who)} money on a present.")
        s.gold.append(f"{frac.capitalize()} of the money is {t1} dollars.")
        s.gold.append(f"So {x} has {t2} dollars left.")
    else:
        verb = {"baking": "sells", "farm": "sells"}.get(s.theme, "gives away")
        s.sentences.append(f"{x} {verb} {frac} of {s.pos(who)} {s.unit}.")
        s.gold.append(f"{frac.capitalize()} of them is {t1} {s.unit}.")
        s.gold.append(f"So {x} has {t2} {s.unit} left.")
    s.ref[who] = ref
    return True


def _ev_rate(s: _Story) -> bool:
    """k groups of m (packs, trays, hours, items bought at a price): the product, then add or subtract it."""
    if s.room() < 2:
        return False
    who = s.focus
    x, cur, v = s.name[who], s.ref[who], s.value(s.ref[who])
    k, m = s.rng.randint(2, 6), s.rng.randint(2, 12)
    spend = s.theme == "money" and s.rng.random() < 0.5
    if spend and k * m >= v:
        return False
    made = s.eq("*", k, m)
    if made is None:
        return False
    prod_ref, prod, t1 = made
    made = s.eq("-" if spend else "+", cur, prod_ref)
    if made is None:
        _undo(s, 1)
        return False
    ref, r, t2 = made
    if s.theme == "money" and spend:
        thing = s.rng.choice(_THINGS)[1]
        s.sentences.append(f"{x} buys {k} {thing} that cost {m} dollars each.")
        s.gold.append(f"The {thing} cost {t1} dollars.")
        s.gold.append(f"So {x} has {t2} dollars left.")
    elif s.theme == "money":
        s.sentences.append(f"{x} works for {k} hours and earns {m} dollars an hour.")
        s.gold.append(f"{x} earns {t1} dollars.")
        s.gold.append(f"So {s.pro(who)} has {t2} dollars.")
    else:
        one, many = s.box
        verb = {"baking": "bakes", "farm": "fills"}.get(s.theme, "buys")
        s.sentences.append(f"{x} {verb} {k} {many} with {m} {s.unit} in each {one}.")
        s.gold.append(f"{k} {many} of {m} is {t1} {s.unit}.")
        s.gold.append(f"So {x} has {t2} {s.unit}.")
    s.ref[who] = ref
    return True


def _ev_compare(s: _Story) -> bool:
    """The second person enters, compared with the first: n more / n fewer / twice / a third as many."""
    if s.ref["B"] is not None:
        return False
    a, b = s.name["A"], s.name["B"]
    cur, v = s.ref["A"], s.value(s.ref["A"])
    kind = s.rng.choice(("more", "fewer", "times", "fraction"))
    if kind == "more":
        n = s.rng.randint(2, 20)
        made = s.eq("+", cur, n)
        what = f"{n} dollars more than" if s.theme == "money" else f"{n} more {s.unit} than"
        gold_what = f"{n} more than"
    elif kind == "fewer":
        if v < 4:
            return False
        n = s.rng.randint(2, min(v - 2, 20))
        made = s.eq("-", cur, n)
        what = f"{n} dollars less than" if s.theme == "money" else f"{n} fewer {s.unit} than"
        gold_what = f"{n} {'less' if s.theme == 'money' else 'fewer'} than"
    elif kind == "times":
        k = s.rng.choice((2, 3))
        made = s.eq("*", cur, k)
        what = f"{_TIMES[k]} as {'much money' if s.theme == 'money' else 'many ' + s.unit} as"
        gold_what = f"{_TIMES[k]} as {'much' if s.theme == 'money' else 'many'} as"
    else:
        k = s.rng.choice((2, 3, 4))
        made = s.eq("/", cur, k)
        what = f"{_FRACTION[k]} as {'much money' if s.theme == 'money' else 'many ' + s.unit} as"
        gold_what = f"{_FRACTION[k]} as {'much' if s.theme == 'money' else 'many'} as"
    if made is None:
        return False
    ref, r, text = made
    verb = {"baking": "bakes", "farm": "picks"}.get(s.theme, "has")
    s.sentences.append(f"{b} {verb} {what} {a}.")
    s.gold.append(f"{b} {verb} {gold_what} {a}, so {b} {verb} {text} {s.unit}.")
    s.ref["B"], s.focus = ref, "B"
    return True


def _ev_transfer(s: _Story) -> bool:
    """One person gives the other n: two steps, both people change."""
    if s.ref["B"] is None or s.room() < 2:
        return False
    giver = s.rng.choice(("A", "B"))
    taker = "B" if giver == "A" else "A"
    v = s.value(s.ref[giver])
    if v < 4:
        return False
    n = s.rng.randint(2, min(v - 2, 15))
    x, y = s.name[giver], s.name[taker]
    made = s.eq("-", s.ref[giver], n)
    if made is None:
        return False
    g_ref, _, t1 = made
    made = s.eq("+", s.ref[taker], n)
    if made is None:
        _undo(s, 1)
        return False
    t_ref, _, t2 = made
    s.sentences.append(f"{x} gives {y} {n} {s.unit}.")
    s.gold.append(f"{x} gives away {n}, so {x} has {t1} {s.unit}.")
    s.gold.append(f"{y} gets {n}, so {y} has {t2} {s.unit}.")
    s.ref[giver], s.ref[taker] = g_ref, t_ref
    s.focus = s.rng.choice(("A", "B"))
    return True


_EVENTS: tuple[tuple[Event, int], ...] = (  # (event, weight)
    (_ev_gain, 3), (_ev_lose, 3), (_ev_times, 1), (_ev_halve, 1), (_ev_part, 2), (_ev_rate, 2),
    (_ev_compare, 3), (_ev_transfer, 1),
)


def _final(s: _Story) -> str | None:
    """The last step as a question that combines (together / how many more) or shares; None if none fits."""
    kinds = ["share"]
    if s.ref["B"] is not None:
        kinds += ["together", "together", "difference"]
    kind = s.rng.choice(kinds)
    a, b = s.name["A"], s.name["B"]
    if kind == "together":
        made = s.eq("+", s.ref["A"], s.ref["B"])
        if made is None:
            return None
        noun = "dollars" if s.theme == "money" else s.unit
        s.gold.append(f"Together they have {made[2]} {noun}.")
        return f"How many {noun} do {a} and {b} have together?"
    if kind == "difference":
        va, vb = s.value(s.ref["A"]), s.value(s.ref["B"])
        big, small = ("A", "B") if va > vb else ("B", "A")
        made = s.eq("-", s.ref[big], s.ref[small])
        if made is None:
            return None
        more = "more dollars" if s.theme == "money" else f"more {s.unit}"
        s.gold.append(f"{s.name[big]} has {made[2]} {more} than {s.name[small]}.")
        return f"How many {more} does {s.name[big]} have than {s.name[small]}?"
    who = s.focus
    v = s.value(s.ref[who])
    ways = [k for k in (2, 3, 4, 5, 6) if v % k == 0]
    if not ways:
        return None
    k = s.rng.choice(ways)
    made = s.eq("/", s.ref[who], k)
    if made is None:
        return None
    x = s.name[who]
    if s.theme == "money":
        s.sentences.append(f"{x} shares all of {s.pos(who)} money equally among {k} friends.")
        s.gold.append(f"Each friend gets {made[2]} dollars.")
        return "How many dollars does each friend get?"
    s.sentences.append(f"{x} puts all of {s.pos(who)} {s.unit} into {k} bags with the same number in each.")
    s.gold.append(f"Each bag holds {made[2]} {s.unit}.")
    return f"How many {s.unit} are in each bag?"


def _used_by_answer(steps: list[list]) -> bool:
    """Whether every step feeds the last one (the answer)."""
    need, todo = set(), [len(steps) - 1]
    while todo:
        i = todo.pop()
        if i in need:
            continue
        need.add(i)
        todo += [int(x[1:]) for x in steps[i][1:] if isinstance(x, str) and x.startswith("#")]
    return len(need) == len(steps)


def _story(rng: random.Random, theme: str, level: int) -> tuple[dict, str, dict] | None:
    s = _Story(rng, theme, level)
    final_step = rng.random() < 0.4
    weights = [w for _, w in _EVENTS]
    while s.room() > (1 if final_step else 0):
        for _ in range(12):
            event = rng.choices([e for e, _ in _EVENTS], weights)[0]
            if s.room() - (1 if final_step else 0) < 2 and event in (_ev_part, _ev_rate, _ev_transfer):
                continue
            if event(s):
                break
        else:
            return None
    if final_step:
        question = _final(s)
        if question is None:
            return None
    else:
        question = s.question_for(s.focus)
    if len(s.steps) != level or not _used_by_answer(s.steps):
        return None
    if len(set(s.sentences)) != len(s.sentences):
        return None
    answer = s.values[-1]
    text = " ".join(s.sentences + [question])
    solution = "\n".join(s.gold + [f"Final answer: {answer}"])
    spec = {"template": theme, "level": level, "start": s.start, "steps": s.steps}
    return spec, text, {"solution": solution}


_SUITE = WordSuite(name="reasoner", label="reasoner", family_word="theme", id_prefix="rp", families=THEMES,
                   listed=THEMES, max_level=MAX_LEVEL, default_levels=DEFAULT_LEVELS, attempts=(400, 2000),
                   story=_story, solve=solve, tag_spec=True)


def check_args(levels, split: str | None = None, fmt: str = DEFAULT_FORMAT, themes=None) -> None:
    _SUITE.check_args(levels, split, fmt, themes)


def generate(level: int, n: int, split: str = "test", seed: int = 0, themes: tuple[str, ...] | None = None,
             fmt: str = DEFAULT_FORMAT) -> list[Problem]:
    """``n`` distinct problems of one level (steps) and split, the themes drawn in turn."""
    return _SUITE.generate(level, n, split, seed, themes, fmt)


def suite(split: str = "test", n_per_level: int = 20, seed: int = 0, levels=DEFAULT_LEVELS,
          themes: tuple[str, ...] | None = None, fmt: str = DEFAULT_FORMAT) -> list[Problem]:
    """``n_per_level`` problems for every level in ``levels``, interleaved so a prefix of the list mixes them."""
    return _SUITE.suite(split, n_per_level, seed, levels, themes, fmt)


def parse_spec(spec: str) -> dict:
    """``reasoner[:LEVELS[:FORMAT]]`` → ``{"levels": (...), "fmt": ..., "suite": "reasoner"}``."""
    return _SUITE.parse_spec(spec)


def from_spec(spec: str, split: str, n_per_level: int, seed: int) -> list[Problem]:
    return _SUITE.from_spec(spec, split, n_per_level, seed)
