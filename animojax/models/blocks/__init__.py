"""Building blocks by lineage (PIRenderer-style layers; StyleGAN2 primitives have other inits)."""
