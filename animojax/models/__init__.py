"""Flax NNX models, one folder per family; `blocks/` holds building blocks shared by lineage."""
