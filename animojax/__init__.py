"""animojax: cross-domain head reenactment (anime <-> human) in JAX / Flax NNX."""
