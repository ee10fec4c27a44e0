"""cartoon_videos: TFDS builder folder (`tfds new` layout); see README.md."""
