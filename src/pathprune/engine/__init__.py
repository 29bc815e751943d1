"""The Launch–Check–Resume engine (sampling primitives so far)."""

from .sampling import SamplingParams, encode_problem, sample

__all__ = ["SamplingParams", "encode_problem", "sample"]
