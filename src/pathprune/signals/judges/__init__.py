"""Separate judge models that re-read a prefix's text (Type II, external and learnable).

* :mod:`.prm`: process reward models in the Qwen2.5-Math-PRM convention
  (steps joined by ``<extra_0>``, reward = p(positive) at each separator);
* :mod:`.retrain`: the paper's "Type II-retrain" control, a separate small
  model with a classification head trained on STOP's Monte-Carlo labels.
"""

from .prm import PRM, load_prm, split_steps
from .retrain import Judge, JudgeConfig, judge_train_config, load_judge, save_judge, train_judge

__all__ = ["PRM", "Judge", "JudgeConfig", "judge_train_config", "load_judge", "load_prm", "save_judge",
           "split_steps", "train_judge"]
