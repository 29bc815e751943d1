"""Scale-out: idempotent units run exactly once, in process or on a pool of Ray actors
(see docs/distributed.md)."""

from .units import UnitStats, run_units, run_units_here

__all__ = ["UnitStats", "run_units", "run_units_here"]
