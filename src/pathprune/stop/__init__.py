"""STOP: learned [STOP] tokens, a critique adapter and a head on a frozen backbone (Type IV)."""

from .checkpoint import import_official, load_stop, save_stop
from .config import StopConfig, fingerprint
from .module import StopModule

__all__ = ["StopConfig", "StopModule", "fingerprint", "import_official", "load_stop", "save_stop"]
