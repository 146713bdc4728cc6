"""The ``supcon`` recipe: supervised contrastive learning on images (Khosla et al. 2020)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from manyview.config import ConfigError
from manyview.recipes import loss_contract
from manyview.recipes.parts import first_sample
from manyview_vision.recipes.base import EXAMPLE, ImageContrastiveRecipe

__all__ = ["SupConRecipe"]


class SupConRecipe(ImageContrastiveRecipe):
    """Supervised contrastive learning on images (Khosla et al., NeurIPS 2020): SimCLR's
    views and head, and a label-using loss such as ``supcon``; the dataset's samples need a
    ``label``.
    """

    default_view = "simclr"
    example_config = EXAMPLE.format(recipe="supcon", views="", loss="supcon")

    def __init__(self, config: Mapping[str, Any], dataset: Any) -> None:
        first_sample(dataset, (), label_for="supcon recipe")
        super().__init__(config, dataset)
        labelled = [
            name for name, loss, _ in self.losses.items() if "labels" in loss_contract(loss)[2]
        ]
        if not labelled:
            raise ConfigError(
                'supcon recipe: no loss uses the labels; add [[losses]] name = "supcon"'
            )
