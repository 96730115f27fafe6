"""Fitting the engine's models: the training loop, augmentation, recipes and the ladder."""
