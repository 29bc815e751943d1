"""Bridges to training frameworks: :mod:`pathprune.integrations.trl` (pruned rollouts for TRL's GRPOTrainer)
and :mod:`pathprune.integrations.rl_testbed` (the GRPO experiment on the testbed behind ``pathprune rl``)."""
