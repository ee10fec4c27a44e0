"""voxceleb_3dmm: TFDS builder folder (`tfds new` layout); see README.md."""
