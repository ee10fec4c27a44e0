"""synthetic_heads: the embedded, download-free synthetic anime/human head dataset."""
