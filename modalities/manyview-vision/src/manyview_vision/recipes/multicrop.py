"""The ``multicrop`` recipe: K global + L local crops in one multi-view loss call."""

from __future__ import annotations

from manyview_vision.recipes.base import EXAMPLE, ImageContrastiveRecipe

__all__ = ["MultiCropRecipe"]


class MultiCropRecipe(ImageContrastiveRecipe):
    """Multi-view learning on images with multi-crop (Caron et al., SwAV, NeurIPS 2020): K
    global + L local crops per image (default ``multicrop``: 2 + 6), all M = K + L views in
    one call of any multi-view loss (``mv_infonce``, ``mv_dhel``, ``pvc``, ``infonce`` with M
    positives, ...).

    Configuration: ``[run] recipe = "multicrop"``; ``views`` empty for ``multicrop``, or
    e.g. ``[{name = "dino"}]`` or ``[{name = "multicrop", options = {local_crops = 4}}]``.
    """

    default_view = "multicrop"
    example_config = EXAMPLE.format(
        recipe="multicrop",
        views='views = [{ name = "multicrop", options = { global_size = 8, local_size = 4, local_crops = 2 } }]',
        loss="mv_infonce",
    )
