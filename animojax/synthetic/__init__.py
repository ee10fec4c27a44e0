"""The embedded synthetic two-domain dataset generator (sparse morphable model, renderers)."""
