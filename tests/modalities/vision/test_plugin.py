"""manyview-vision registers its encoders and recipes (its views: views/test_package.py)."""

from __future__ import annotations

import manyview


def test_encoders_registered_with_modality_image():
    for name in ("timm", "small_cnn"):
        entry = manyview.entry("encoder", name)
        assert entry.modality == "image" and entry.plugin == "manyview-vision"


def test_recipes_registered():
    for name in ("simclr", "multicrop", "supcon"):
        assert manyview.entry("recipe", name).plugin == "manyview-vision"
