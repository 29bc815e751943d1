"""Problem-level train / validation / test splits (80 / 10 / 10) from a SHA-256 of the problem text.

A problem's split is a function of its text alone, so the same problem can never
land in two splits, whatever seed or level generated it. The testbed and the
word problems share this one rule.
"""

from __future__ import annotations

import hashlib
from typing import Literal

from ..errors import PathpruneError

Split = Literal["train", "validation", "test"]
SPLITS: tuple[Split, ...] = ("train", "validation", "test")
_BOUNDS = {"train": (0, 80), "validation": (80, 90), "test": (90, 100)}


def text_digest(text: str, length: int = 10) -> str:
    """The first ``length`` hex digits of the text's SHA-256 (problem ids use 10)."""
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def split_of(text: str) -> Split:
    """80 / 10 / 10 split from a SHA-256 of the problem text."""
    bucket = int(text_digest(text, 8), 16) % 100
    return next(s for s, (lo, hi) in _BOUNDS.items() if lo <= bucket < hi)


def check_split(split: str) -> None:
    """A one-line error for a split that is not train, validation or test."""
    if split not in SPLITS:
        raise PathpruneError(f"unknown split {split!r}; choose from {list(SPLITS)}", parameter="split", value=split)
