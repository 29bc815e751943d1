"""The Launch–Check–Resume engine."""

from .accounting import StageTimes, TokenUsage
from .batch import LiveBatch, PathRecord
from .pruner import PathResult, ProblemResult, Pruner
from .sampling import SamplingParams, encode_problem, sample
from .schedule import Schedule, Stage

__all__ = ["LiveBatch", "PathRecord", "PathResult", "ProblemResult", "Pruner", "SamplingParams", "Schedule",
           "Stage", "StageTimes", "TokenUsage", "encode_problem", "sample"]
