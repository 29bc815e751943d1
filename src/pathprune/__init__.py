"""pathprune: early path pruning for parallel reasoning (Launch, Check, Resume)."""

from .engine import SamplingParams, sample
from .errors import PathpruneError
from .models import load_model
from .tasks import Problem, grade, load_benchmark

__version__ = "0.1.0"
__all__ = ["PathpruneError", "Problem", "SamplingParams", "grade", "load_benchmark", "load_model", "sample"]
