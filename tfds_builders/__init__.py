"""TFDS dataset builders (the `tfds new` layout, one folder per dataset)."""
