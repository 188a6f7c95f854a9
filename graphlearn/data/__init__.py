"""Dataset loaders: each reads a source's own published format and returns PyG ``Data``."""
