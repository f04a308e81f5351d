"""xai-serve client: predictions and explanation heatmaps over gRPC and HTTP, without torch."""

__version__ = "0.1.0"
