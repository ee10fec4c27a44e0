"""Small single-purpose utilities: sharding, checkpoints, writers, trees, images."""
