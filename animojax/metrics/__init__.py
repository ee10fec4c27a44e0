"""Evaluation metrics (jitted, batched)."""
