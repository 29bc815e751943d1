"""The one record every component passes around: a problem with its reference answer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

AnswerKind = Literal["math", "choice", "testbed", "text"]


@dataclass(frozen=True)
class Problem:
    """A question to reason about, and how to grade answers to it.

    Exactly one of ``prompt`` (raw text fed to the model as is) and ``messages``
    (a chat conversation rendered through the tokenizer's chat template) is set.
    """

    id: str
    """Unique within its benchmark, stable across runs (used to resume jobs)."""
    answer: str
    """Reference answer, as the benchmark writes it."""
    answer_kind: AnswerKind = "math"
    """How answers are extracted and graded (see :mod:`pathprune.tasks.grading`)."""
    prompt: str | None = None
    messages: tuple[dict[str, str], ...] | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    """Free-form provenance (source file, difficulty, family, split...)."""

    def __post_init__(self) -> None:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError(f"problem {self.id!r}: set exactly one of prompt and messages")

    @property
    def input(self) -> str | tuple[dict[str, str], ...]:
        """What the model is prompted with: the text or the chat messages."""
        return self.messages if self.messages is not None else self.prompt
