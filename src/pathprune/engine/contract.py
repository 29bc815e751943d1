"""The contract between the engine and its signals: what a signal may read at a checkpoint.

A signal declares where it sits in the paper's taxonomy (source internal or
external, learnable or not) and what it needs from the engine, so reports can
group and charge signals honestly. Tokens a signal appends through
:meth:`LiveBatch.probe` are counted automatically as check tokens; a signal
that re-encodes text (an external judge) reports that with :meth:`CheckView.charge`.

Signals, STOP and evaluation depend on this module; it depends on nothing above the engine.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch

from .batch import LiveBatch, PathRecord
from .request import Request


@dataclass
class CheckView:
    """What a signal sees at a checkpoint: the live batch plus the requests its rows belong to."""

    batch: LiveBatch
    requests: list[Request]
    """The requests of the current batch, indexed by ``PathRecord.problem_index``."""
    tokenizer: object
    stage: int
    seed: int = 0
    reencoded_tokens: int = 0

    @property
    def records(self) -> list[PathRecord]:
        return self.batch.records

    @property
    def in_process(self) -> bool:
        """Whether the paused batch holds the model and its cache here (``batch.probe``, ``batch.model``) or
        reads from an engine (``batch.read``); see :attr:`~pathprune.engine.backend.Backend.in_process`."""
        return self.batch.in_process

    def texts(self) -> list[str]:
        """Decoded prefixes, one per row (for text-based signals)."""
        return [self.tokenizer.decode(r.tokens, skip_special_tokens=True) for r in self.records]

    def charge(self, *, tokens: int = 0) -> None:
        """Record tokens a signal re-reads outside the shared cache (external judges re-encoding text)."""
        self.reencoded_tokens += tokens


class Signal(ABC):
    """Base class of pruning signals. Subclasses set the class attributes and :meth:`score`."""

    name: ClassVar[str]
    source: ClassVar[Literal["internal", "external", "none"]]
    learnable: ClassVar[bool]
    needs: ClassVar[frozenset[str]] = frozenset()
    """Subset of {"text", "logprobs", "top_logprobs", "cache", "label"}: "logprobs" the sampled tokens'
    log-probabilities, "top_logprobs" also the top-k per token (and entropies); a backend records only what
    the run's signal reads."""

    @property
    def taxonomy(self) -> str:
        """Type I–IV of the STOP paper ("ref" for references such as random)."""
        if self.source == "none":
            return "ref"
        return {("external", False): "I", ("external", True): "II",
                ("internal", False): "III", ("internal", True): "IV"}[(self.source, self.learnable)]

    def validate(self) -> None:
        """Check the signal's files and arguments without running it (default: nothing to check).

        Called when a signal is built for a run, whether or not the schedule prunes."""

    def vllm_overrides(self, model_dir) -> dict:
        """Config overrides a vLLM engine for ``model_dir`` needs to run this signal's check inside vLLM
        (e.g. STOP's model plugin); default: none. The vLLM backend builds its engine with them."""
        return {}

    @abstractmethod
    def score(self, view: CheckView) -> torch.Tensor:
        """One float per live row (``view.records`` order); higher = more promising."""
