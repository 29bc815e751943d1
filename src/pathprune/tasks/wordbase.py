"""What the two word-problem sources share: answer formats, people's names and the four operations.

:mod:`pathprune.tasks.wordproblems` (one running value) and :mod:`pathprune.tasks.reasoner` (worked
solutions, two people) both build on these, so neither imports the other's module for them.
"""

from __future__ import annotations

from .loaders import MATH_INSTRUCTION

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
