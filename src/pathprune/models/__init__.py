"""Model loading: embedded models, Hugging Face directories and GGUF files."""

from .cache import cache_dir
from .loading import load_model, resolve
from .registry import EMBEDDED

__all__ = ["EMBEDDED", "cache_dir", "load_model", "resolve"]
