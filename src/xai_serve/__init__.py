"""xai-serve: train CNN classifiers and serve their predictions with explanation heatmaps."""

__version__ = "0.1.0"
