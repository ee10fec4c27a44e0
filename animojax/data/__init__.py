"""Input pipeline: TFDS data sources, same-identity pairs, grain batching, global arrays."""
