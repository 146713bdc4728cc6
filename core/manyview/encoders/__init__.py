"""Encoders that come with the core (modality plugins add their own)."""

from manyview.encoders.mlp import MLPEncoder

__all__ = ["MLPEncoder"]
