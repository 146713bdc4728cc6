"""Views that come with the core (modality plugins add their own)."""

from manyview.views.embedding_noise import EmbeddingNoise
from manyview.views.vector import FeatureMask, GaussianNoise

__all__ = ["EmbeddingNoise", "FeatureMask", "GaussianNoise"]
