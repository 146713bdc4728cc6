"""Encoders that come with the core (modality plugins add their own), and the attention
backends the modality plugins' transformers run on (:mod:`manyview.encoders.attention`)."""

from manyview.encoders.mlp import MLPEncoder

__all__ = ["MLPEncoder"]
