"""Input pipeline: TFDS sources, samplers (pairs, video pairs, single images), global arrays."""
