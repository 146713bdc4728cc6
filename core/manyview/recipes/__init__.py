"""Recipes: the recipe protocol, its building blocks, and the core's ``contrastive`` and
``distill`` recipes.

The protocol (``docs/architecture.md``): :class:`Recipe` (a whole ``step``) and
:class:`EmbedRecipe` (``draw`` / ``embed_views`` / ``objective``, which the trainer can
also run with GradCache); :class:`WeightedLosses` owns a recipe's named, weighted losses;
:func:`build_encoder`, :func:`build_views`, :func:`build_teacher` and :class:`Projector`
build the parts from configuration tables.
"""

from manyview.recipes.base import EmbedRecipe, Recipe, StepOutput, batch_inputs
from manyview.recipes.contrastive import ContrastiveRecipe
from manyview.recipes.distill import DistillRecipe, Student
from manyview.recipes.parts import (
    Projector,
    ViewPipeline,
    build_encoder,
    build_projector,
    build_teacher,
    build_views,
    first_sample,
    option_switch,
    option_table,
    recipe_options,
    sub_options,
)
from manyview.recipes.weighted import WeightedLosses, loss_contract

__all__ = [
    "ContrastiveRecipe",
    "DistillRecipe",
    "EmbedRecipe",
    "Projector",
    "Recipe",
    "StepOutput",
    "Student",
    "ViewPipeline",
    "WeightedLosses",
    "batch_inputs",
    "build_encoder",
    "build_projector",
    "build_teacher",
    "build_views",
    "first_sample",
    "loss_contract",
    "option_switch",
    "option_table",
    "recipe_options",
    "sub_options",
]
