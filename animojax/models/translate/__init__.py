"""Anime <-> real face translation networks (CycleGAN, U-GAT-IT, and the paper's baselines)."""
