"""Problems, answer extraction, grading and benchmark loaders."""

from .answers import extract_answer
from .grading import answers_equal, grade
from .loaders import load_benchmark
from .problem import Problem

__all__ = ["Problem", "answers_equal", "extract_answer", "grade", "load_benchmark"]
