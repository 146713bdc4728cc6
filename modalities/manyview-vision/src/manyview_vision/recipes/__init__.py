"""Image recipes on the core's ``contrastive`` recipe: ``simclr``, ``multicrop``, ``supcon``."""

from manyview_vision.recipes.base import ImageContrastiveRecipe, views_per_call
from manyview_vision.recipes.multicrop import MultiCropRecipe
from manyview_vision.recipes.simclr import SimCLRRecipe
from manyview_vision.recipes.supcon import SupConRecipe

__all__ = [
    "ImageContrastiveRecipe",
    "MultiCropRecipe",
    "SimCLRRecipe",
    "SupConRecipe",
    "views_per_call",
]
