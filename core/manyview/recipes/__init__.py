"""Recipes that come with the core: ``contrastive`` and ``distill``."""

from manyview.recipes.base import Recipe, StepOutput
from manyview.recipes.contrastive import ContrastiveRecipe
from manyview.recipes.distill import DistillRecipe

__all__ = ["ContrastiveRecipe", "DistillRecipe", "Recipe", "StepOutput"]
