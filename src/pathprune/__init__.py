"""pathprune: early path pruning for parallel reasoning (Launch, Check, Resume).

    >>> from pathprune import Pruner, SamplingParams
    >>> outs = Pruner("testbed", signal="stop", schedule="16:4").generate(  # doctest: +SKIP
    ...     ["C 2 + 3 * 4 - 1 ="], SamplingParams(n=8, max_new_tokens=80))
"""

from . import signals  # noqa: F401  (registers the built-in signals in the engine's registry)
from .engine import (CheckView, PathOutput, Pruner, RequestOutput, SamplingParams, Schedule, Signal,
                     available_signals, register_signal, sample)
from .errors import PathpruneError
from .models import load_model
from .tasks import Problem, grade, load_benchmark

__version__ = "0.1.0"
__all__ = ["CheckView", "PathOutput", "PathpruneError", "Problem", "Pruner", "RequestOutput", "SamplingParams",
           "Schedule", "Signal", "available_signals", "grade", "load_benchmark", "load_model", "register_signal",
           "sample"]
