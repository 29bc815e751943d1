"""Pruning schedules: one checkpoint (``2048:8``) or a cascade (``512:32,1024:16,2048:8``).

Each stage is ``L:k`` (pause every live path after L generated tokens and keep
the k best of each problem) or ``L:t=0.5`` (keep every path scoring at least
0.5, and at least one).

    >>> Schedule.parse("512:32,1024:16,2048:8").validate(n=64).keeps
    [32, 16, 8]
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

    def __str__(self) -> str:
        return f"{self.prefix_tokens}:" + (str(self.keep) if self.keep is not None else f"t={self.threshold}")


@dataclass(frozen=True)
class Schedule:
    stages: tuple[Stage, ...]

    @property
    def keeps(self) -> list[int | None]:
        return [s.keep for s in self.stages]

    def __str__(self) -> str:
        return ",".join(map(str, self.stages))

    @classmethod
    def parse(cls, text: str) -> Schedule:
        """Parse ``"L:k[,L:k...]"`` (``k`` may be ``t=<threshold>``)."""
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
    def none(cls) -> Schedule:
        """No pruning: every path runs to its end."""
        return cls(())

    def validate(self, n: int, max_new_tokens: int | None = None) -> Schedule:
        """Check the schedule against N paths: lengths increase, keeps shrink, 1 <= k <= N."""
        last_len, last_keep = 0, n
        for s in self.stages:
            if s.prefix_tokens <= last_len:
                raise PathpruneError(f"checkpoint lengths must increase and be >= 1, got {self}",
                                     parameter="schedule", value=str(self))
            if max_new_tokens is not None and s.prefix_tokens >= max_new_tokens:
                raise PathpruneError(f"checkpoint {s.prefix_tokens} must be below max_new_tokens={max_new_tokens}",
                                     parameter="schedule", value=str(self))
            if s.keep is not None:
                if not 1 <= s.keep <= last_keep:
                    what = f"k must be in [1, {n}]" if last_keep == n else "keeps must shrink from stage to stage"
                    raise PathpruneError(f"{what}, got k={s.keep} in {self}", parameter="schedule", value=str(self))
                last_keep = s.keep
            last_len = s.prefix_tokens
        return self
