"""Metrics for pruning signals and pruned results."""
