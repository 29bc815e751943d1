"""Scale-out: idempotent units run exactly once, in process or on a pool of Ray actors
(see docs/distributed.md)."""

from .local import run_units_here
from .runner import run_units
from .units import UnitStats

__all__ = ["UnitStats", "run_units", "run_units_here"]
