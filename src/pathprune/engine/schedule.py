"""Pruning schedules: one checkpoint (``2048:8``) or a cascade (``512:32,1024:16,2048:8``).

Each stage is a checkpoint and a keep rule. Checkpoints:

* ``L``: pause every live path after L generated tokens;
* ``stepM/L``: pause each path when it has written its M-th reasoning step (the M-th step delimiter,
  ``SamplingParams.step_delimiter``, a newline by default, counted on the decoded text), or after L tokens if
  it has not by then (the cap). Paths pause at different lengths; a request is checked when all its live
  paths have paused, each scored at its own length (:mod:`pathprune.engine.steps`).

Keep rules: ``:k`` (the k best of each problem) or ``:t=0.5`` (every path scoring at least 0.5, and at least
one). Cascades may mix both kinds:

    >>> Schedule.parse("512:32,1024:16,2048:8").check(n=64).keeps
    [32, 16, 8]
    >>> str(Schedule.parse("step1/64:8, step3/160:4"))
    'step1/64:8,step3/160:4'

Stages and schedules are checked when built (caps and lengths increase, step counts increase, keeps shrink);
:meth:`Schedule.check` adds what depends on the run (k <= N, L < max_new_tokens). A step checkpoint that
follows another stage counts steps from the path's start: a path that already has M steps when it reaches
the stage is checked where it stands.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import PathpruneError


def checkpoint_name(length: int, steps: int | None) -> str:
    """``"48"`` or ``"step2/96"``: the name a checkpoint is written and keyed by (the inverse of
    :func:`parse_checkpoint`)."""
    return str(length) if steps is None else f"step{steps}/{length}"


def parse_checkpoint(text: str) -> tuple[int, int | None]:
    """``"48"`` → (48, None); ``"step2/96"`` → (96, 2). ValueError when it is neither."""
    text = text.strip()
    if not text.startswith("step"):
        return int(text), None
    steps, slash, cap = text[4:].partition("/")
    if not slash:
        raise ValueError(f"a step checkpoint needs its token cap: step{steps}/L")
    return int(cap), int(steps)


def checked_checkpoints(specs, max_new_tokens: int, what: str = "checkpoints") -> list[tuple[int, int | None]]:
    """Every checkpoint of ``specs`` (lengths L or ``"stepM/L"``) as ``(L, M or None)``, checked:
    1 <= L < max_new_tokens and M >= 1; a one-line error naming ``what`` otherwise."""
    try:
        cuts = [parse_checkpoint(str(c)) for c in specs]
    except ValueError:
        raise PathpruneError(f"bad {what} {list(specs)}: give lengths L or stepM/L", parameter=what) from None
    if not cuts or any(not 1 <= L < max_new_tokens or (m is not None and m < 1) for L, m in cuts):
        raise PathpruneError(f"{what} must lie in 1..{max_new_tokens - 1} (max_new_tokens {max_new_tokens}), "
                             f"steps >= 1; got {list(specs)}", parameter=what)
    return cuts


@dataclass(frozen=True)
class Stage:
    prefix_tokens: int
    """Generated tokens per path at this checkpoint (L_prefix)."""
    keep: int | None = None
    """Paths kept per problem (top-k)."""
    threshold: float | None = None
    """Alternatively keep every path whose score is at least this."""
    steps: int | None = None
    """Pause each path at its ``steps``-th step delimiter instead, ``prefix_tokens`` being the cap."""

    def __post_init__(self) -> None:
        if (self.keep is None) == (self.threshold is None):
            raise PathpruneError(f"a stage keeps top-k or applies a threshold: give exactly one of keep and "
                                 f"threshold (got keep={self.keep}, threshold={self.threshold})",
                                 parameter="schedule", value=str(self))
        if self.prefix_tokens < 1:
            raise PathpruneError(f"checkpoint lengths must be >= 1, got {self.prefix_tokens}",
                                 parameter="schedule", value=str(self))
        if self.keep is not None and self.keep < 1:
            raise PathpruneError(f"k must be >= 1, got {self.keep}", parameter="schedule", value=str(self))
        if self.steps is not None and self.steps < 1:
            raise PathpruneError(f"a step checkpoint needs steps >= 1, got {self.steps}", parameter="schedule",
                                 value=str(self))

    @property
    def checkpoint(self) -> str:
        """``"L"`` or ``"stepM/L"``: where the stage pauses (the name evaluations key scores by)."""
        return checkpoint_name(self.prefix_tokens, self.steps)

    def __str__(self) -> str:
        return f"{self.checkpoint}:" + (str(self.keep) if self.keep is not None else f"t={self.threshold}")


@dataclass(frozen=True)
class Schedule:
    stages: tuple[Stage, ...]

    def __post_init__(self) -> None:
        last_len, last_keep, last_steps = 0, None, 0
        for s in self.stages:
            if s.prefix_tokens <= last_len:
                raise PathpruneError(f"checkpoint lengths must increase (a step checkpoint's cap is its length), "
                                     f"got {self}", parameter="schedule", value=str(self))
            if s.steps is not None:
                if s.steps <= last_steps:
                    raise PathpruneError(f"step counts must increase, got {self}", parameter="schedule",
                                         value=str(self))
                last_steps = s.steps
            if s.keep is not None:
                if last_keep is not None and s.keep > last_keep:
                    raise PathpruneError(f"keeps must shrink from stage to stage, got {self}",
                                         parameter="schedule", value=str(self))
                last_keep = s.keep
            last_len = s.prefix_tokens

    @property
    def keeps(self) -> list[int | None]:
        return [s.keep for s in self.stages]

    def __str__(self) -> str:
        return ",".join(map(str, self.stages))

    @classmethod
    def parse(cls, text: str) -> Schedule:
        """Parse ``"C:k[,C:k...]"``, each checkpoint ``C`` being ``L`` or ``stepM/L`` (``k`` may be
        ``t=<threshold>``); ``"none"`` or ``""`` is no pruning."""
        if str(text).strip() in ("", "none"):
            return cls.none()
        stages = []
        for part in str(text).split(","):
            if not part.strip():
                continue
            try:
                where, keep = (x.strip() for x in part.split(":"))
                length, steps = parse_checkpoint(where)
                if keep.startswith("t="):
                    stages.append(Stage(length, threshold=float(keep[2:]), steps=steps))
                else:
                    stages.append(Stage(length, keep=int(keep), steps=steps))
            except ValueError:
                raise PathpruneError(f"bad schedule stage {part.strip()!r}: expected L:k (e.g. 2048:8), L:t=0.5 "
                                     "or stepM/L:k (e.g. step2/96:4: at the 2nd step, at most 96 tokens)",
                                     parameter="schedule", value=text) from None
        if not stages:
            raise PathpruneError("empty schedule; expected e.g. 2048:8", parameter="schedule", value=text)
        return cls(tuple(stages))

    @classmethod
    def of(cls, schedule: Schedule | str | None) -> Schedule:
        """A schedule from a spec, an instance, or None (no pruning)."""
        if isinstance(schedule, Schedule):
            return schedule
        return cls.none() if schedule is None else cls.parse(schedule)

    @classmethod
    def none(cls) -> Schedule:
        """No pruning: every path runs to its end."""
        return cls(())

    def check(self, n: int, max_new_tokens: int | None = None) -> Schedule:
        """Check the schedule against a run of N paths: 1 <= k <= N and every checkpoint below max_new_tokens."""
        for s in self.stages:
            if max_new_tokens is not None and s.prefix_tokens >= max_new_tokens:
                raise PathpruneError(f"checkpoint {s.prefix_tokens} must be below max_new_tokens={max_new_tokens}",
                                     parameter="schedule", value=str(self))
            if s.keep is not None and s.keep > n:
                raise PathpruneError(f"k must be in [1, {n}], got k={s.keep} in {self}", parameter="schedule",
                                     value=str(self))
        return self
