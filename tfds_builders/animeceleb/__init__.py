"""animeceleb: TFDS builder folder (`tfds new` layout); see README.md."""
