"""Pieces every trainer family shares: checkpoints, preemption, precision, metric writing."""
