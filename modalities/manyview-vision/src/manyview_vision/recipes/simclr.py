"""The ``simclr`` recipe: SimCLR on images (Chen et al., ICML 2020)."""

from __future__ import annotations

from manyview_vision.recipes.base import EXAMPLE, ImageContrastiveRecipe

__all__ = ["SimCLRRecipe"]


class SimCLRRecipe(ImageContrastiveRecipe):
    """SimCLR on images (Chen et al. 2020): two ``simclr`` views per image, SimCLR's
    projection head, and the configured losses (``infonce`` is NT-Xent).

    Configuration: ``[run] recipe = "simclr"``; an image modality with an image encoder;
    ``views`` empty for SimCLR's views, or any views (a view set, or ``image_augment``
    with ``num_views = 2``). Everything else as the ``contrastive`` recipe.
    """

    default_view = "simclr"
    example_config = EXAMPLE.format(recipe="simclr", views="", loss="infonce")
