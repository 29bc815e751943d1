"""Pruning schedules: one checkpoint (``2048:8``) or a cascade (``512:32,1024:16,2048:8``).

Each stage is ``L:k`` (pause every live path after L generated tokens and keep
the k best of each problem) or ``L:t=0.5`` (keep every path scoring at least
0.5, and at least one).

    >>> Schedule.parse("512:32,1024:16,2048:8").check(n=64).keeps
    [32, 16, 8]

Stages and schedules are checked when built (lengths increase, keeps shrink);
:meth:`Schedule.check` adds what depends on the run (k <= N, L < max_new_tokens).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import PathpruneError


@dataclass(frozen=True)
class Stage:
    prefix_tokens: int
    """Generated tokens per path at this checkpoint (L_prefix)."""
    keep: int | None = None
    """Paths kept per problem (top-k)."""
    threshold: float | None = None
    """Alternatively keep every path whose score is at least this."""

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

    def __str__(self) -> str:
        return f"{self.prefix_tokens}:" + (str(self.keep) if self.keep is not None else f"t={self.threshold}")


@dataclass(frozen=True)
class Schedule:
    stages: tuple[Stage, ...]

    def __post_init__(self) -> None:
        last_len, last_keep = 0, None
        for s in self.stages:
            if s.prefix_tokens <= last_len:
                raise PathpruneError(f"checkpoint lengths must increase, got {self}", parameter="schedule",
                                     value=str(self))
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
        """Parse ``"L:k[,L:k...]"`` (``k`` may be ``t=<threshold>``); ``"none"`` or ``""`` is no pruning."""
        if str(text).strip() in ("", "none"):
            return cls.none()
        stages = []
        for part in str(text).split(","):
            if not part.strip():
                continue
            try:
                length, keep = (x.strip() for x in part.split(":"))
                if keep.startswith("t="):
                    stages.append(Stage(int(length), threshold=float(keep[2:])))
                else:
                    stages.append(Stage(int(length), keep=int(keep)))
            except ValueError:
                raise PathpruneError(f"bad schedule stage {part.strip()!r}: expected L:k (e.g. 2048:8) or L:t=0.5",
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
