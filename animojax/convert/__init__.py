"""Reading third-party checkpoints (PyTorch files, without PyTorch) and converting weights."""
