"""Signal quality metrics.

AUROC, within-problem AUROC, MSE, Brier and ECE are defined in the leaf module
:mod:`pathprune.stats` (so that ``stop`` need not import ``evaluation``) and re-exported here.
"""

from __future__ import annotations

from ..stats import auroc, brier, ece, mse, within_problem_auroc  # noqa: F401  (defined in the leaf module)
