"""Datasets that come with the core."""

from manyview.datasets.synthetic import SyntheticModalities

__all__ = ["SyntheticModalities"]
