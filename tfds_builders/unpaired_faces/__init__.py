"""unpaired_faces: TFDS builder folder (`tfds new` layout); see README.md."""
