"""Views that come with the core (modality plugins add their own)."""

from manyview.views.embedding_noise import EmbeddingNoise

__all__ = ["EmbeddingNoise"]
