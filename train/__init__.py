"""Training side: PyTorch models, data, training, evaluation and checkpoints."""
