"""What a pruned run would have kept and spent, computed exactly from a shared launch's logs.

A path is *live at L* when the signal scored it at checkpoint L (it had not
ended before). At ``L:k`` the k best live paths of a problem are kept (ties to
5 significant digits go to the lower path index, as in the engine); paths
that ended before L are complete, kept, and vote. Token usage follows
:class:`~pathprune.engine.TokenUsage`: a pruned path spent exactly L tokens,
a kept one its whole length; check and re-encoding tokens are those charged to
the signal for the live paths at L. A step checkpoint ``stepM/L`` reads the
same way, each path's L being the length it was checked at (``checked_at``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..engine.accounting import TokenUsage
from ..engine.schedule import parse_checkpoint
from ..engine.selection import majority, select_kept
from ..tasks.grading import answers_equal


@dataclass(frozen=True)
class Setting:
    """One pruning setting: signal (None = no pruning), checkpoint (L or ``"stepM/L"``) and keep k."""

    signal: str | None
    prefix: int | str = 0
    keep: int = 0

    @property
    def label(self) -> str:
        return "no pruning" if self.signal is None else f"{self.signal} @{self.prefix}:{self.keep}"


@dataclass
class ProblemOutcome:
    """One problem under one setting."""

    kept: list[int]
    """Path indices kept (live winners and paths that ended before L)."""
    correct: list[bool]
    """Correctness of each kept path."""
    vote_correct: bool
    usage: TokenUsage

    @property
    def avg(self) -> float:
        return sum(self.correct) / len(self.correct) if self.correct else 0.0

    @property
    def any_correct(self) -> bool:
        return any(self.correct)


def checked_length(path: dict, checkpoint: int | str) -> int:
    """Generated tokens of ``path`` at ``checkpoint`` (all of them when it ended before)."""
    key = str(checkpoint)
    if key in path.get("checked_at", {}):
        return path["checked_at"][key]
    length = parse_checkpoint(key)[0]
    return min(path.get("tokens", length), length)


def kept_paths(paths: list[dict], setting: Setting) -> list[int]:
    """Path indices a single-stage ``L:k`` run with this signal keeps."""
    if setting.signal is None:
        return [p["path_index"] for p in paths]
    key = str(setting.prefix)
    live, ended = [], []
    for p in paths:
        entry = p["signals"].get(setting.signal, {}).get(key)
        (live if entry is not None else ended).append((p, entry))
    if live and len(live) + len(ended) != len(paths):  # pragma: no cover - malformed logs
        raise ValueError("inconsistent path logs")
    winners = select_kept([(p["path_index"], entry[0]) for p, entry in live], keep=setting.keep)
    return sorted([p["path_index"] for p, _ in ended] + winners)


def outcome(unit: dict, paths: list[dict], setting: Setting) -> ProblemOutcome:
    """The kept set, the vote and the exact token usage of one problem under ``setting``."""
    kept = set(kept_paths(paths, setting))
    usage = TokenUsage(prompt=unit["prompt_tokens"])
    key = str(setting.prefix)
    for p in paths:
        entry = p["signals"].get(setting.signal, {}).get(key) if setting.signal else None
        if entry is not None:
            usage.check += entry[1]
            usage.reencoded += entry[2]
        if setting.signal is None:
            usage.kept_continuation += p["tokens"]
            continue
        prefix = checked_length(p, setting.prefix)
        if p["path_index"] not in kept:
            usage.pruned_prefix += prefix
        else:
            usage.kept_prefix += prefix
            usage.kept_continuation += p["tokens"] - prefix
    chosen = [p for p in paths if p["path_index"] in kept]
    voted = majority([p["answer"] for p in chosen])
    return ProblemOutcome(sorted(kept), [bool(p["correct"]) for p in chosen],
                          answers_equal(unit["reference"], voted, unit.get("answer_kind", "math")), usage)
