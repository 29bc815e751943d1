"""The Launch–Check–Resume engine: its contract with signals, the backend seam, the loop and the Pruner."""

from .accounting import StageTimes, TokenUsage
from .backend import Backend, TransformersBackend
from .batch import LiveBatch, PathRecord
from .contract import CheckView, Signal
from .loop import launch_check_resume, sample
from .pruner import PathOutput, Pruner, RequestOutput
from .registry import available_signals, get_signal, register_signal
from .request import Prompt, Request, encode_prompt
from .sampling import SamplingParams
from .schedule import Schedule, Stage

__all__ = ["Backend", "CheckView", "LiveBatch", "PathOutput", "PathRecord", "Prompt", "Pruner", "Request",
           "RequestOutput", "SamplingParams", "Schedule", "Signal", "Stage", "StageTimes", "TokenUsage",
           "TransformersBackend", "available_signals", "encode_prompt", "get_signal", "launch_check_resume",
           "register_signal", "sample"]
