"""Pretrained third-party networks ported to Flax NNX (FID Inception, LPIPS AlexNet)."""
