"""Where a path pauses: after L tokens, or at its M-th reasoning step.

A *step* ends at a delimiter (a newline by default), matched on the decoded text of the path's generated
tokens, so how the tokenizer splits it does not matter: a path has written M steps once its text holds M
delimiters (non-overlapping), and a step checkpoint ``stepM/L`` pauses it at the first token where that holds,
or after L tokens if it never does. Both backends pause paths through a :class:`Pause`, and
:meth:`StepCounter.position` finds the same point offline in a finished path (labelling, evaluation), so the
three agree token for token.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..errors import PathpruneError
from .batch import PathRecord

DEFAULT_DELIMITER = "\n"


def recorded_settings(settings: dict) -> dict:
    """``settings`` as a run directory's config records them: a default ``step_delimiter`` is left out, so run
    directories written before step checkpoints existed still resume."""
    return {k: v for k, v in settings.items() if not (k == "step_delimiter" and v == DEFAULT_DELIMITER)}


class StepCounter:
    """Counts a path's steps: delimiters in its decoded generated text."""

    def __init__(self, tokenizer, delimiter: str = DEFAULT_DELIMITER):
        if not isinstance(delimiter, str) or not delimiter:
            raise PathpruneError(f"the step delimiter must be a non-empty string, got {delimiter!r}",
                                 parameter="step_delimiter", value=delimiter)
        self.tokenizer, self.delimiter = tokenizer, delimiter

    def count(self, tokens: Sequence[int]) -> int:
        return self.tokenizer.decode(list(tokens), skip_special_tokens=False).count(self.delimiter)

    def position(self, tokens: Sequence[int], steps: int, cap: int) -> int | None:
        """Generated tokens at which ``tokens`` pauses for ``stepM/L`` (M = ``steps``, L = ``cap``): the first
        prefix holding ``steps`` delimiters, else ``cap``; None when the path ends first (it is never
        checked there)."""
        within = min(len(tokens), cap)
        if within and self.count(tokens[:within]) >= steps:
            lo, hi = 1, within  # the count only grows with the prefix: bisect for the first that has enough
            while lo < hi:
                mid = (lo + hi) // 2
                lo, hi = (lo, mid) if self.count(tokens[:mid]) >= steps else (mid + 1, hi)
            return lo if lo < len(tokens) else None  # the step's last token ended the path: nothing to check
        return cap if len(tokens) > cap else None


@dataclass(frozen=True)
class Pause:
    """One phase of decoding: every live path runs to ``length`` generated tokens, or stops earlier at the first
    token where ``early(record, tokens)`` holds (checked once on entry and after every token)."""

    length: int
    early: Callable[[PathRecord, list[int]], bool] | None = None

    @classmethod
    def of(cls, pause: Pause | int) -> Pause:
        return pause if isinstance(pause, Pause) else cls(int(pause))

    def reached(self, rec: PathRecord, tokens: list[int]) -> bool:
        """True once a path with these generated tokens is at (or past) this pause."""
        return len(tokens) >= self.length or (self.early is not None and self.early(rec, tokens))


def step_pause(counter: StepCounter, steps: int, cap: int) -> Pause:
    """The pause of checkpoint ``stepM/L``: at the ``steps``-th delimiter, at most ``cap`` tokens."""
    return Pause(cap, lambda rec, tokens: counter.count(tokens) >= steps)


def checkpoint_pause(length: int, steps: int | None, counter: StepCounter | None) -> Pause:
    """The pause of checkpoint ``L`` (``steps`` None) or ``stepM/L``."""
    return Pause(length) if steps is None else step_pause(counter, steps, length)


def stage_pauses(stages, tokenizer, delimiter: str = DEFAULT_DELIMITER) -> list[Pause]:
    """One :class:`Pause` per schedule stage (``L`` or ``stepM/L``)."""
    counter = StepCounter(tokenizer, delimiter) if any(s.steps is not None for s in stages) else None
    return [checkpoint_pause(s.prefix_tokens, s.steps, counter) for s in stages]
