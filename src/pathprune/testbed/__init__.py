"""The testbed: a small reasoning model organism trained by pathprune."""

from .families import FAMILIES, NoiseConfig
from .problems import generate, split_of, suite

__all__ = ["FAMILIES", "NoiseConfig", "generate", "split_of", "suite"]
