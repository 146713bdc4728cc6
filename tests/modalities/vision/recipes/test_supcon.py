"""The supcon image recipe: it needs labels and a loss that uses them."""

from __future__ import annotations

import pytest

from manyview.config import ConfigError


def test_supcon_needs_labels_and_a_label_loss(build, step, tiny_images):
    recipe, data = build("supcon", losses=("supcon",))
    step(recipe, data)
    with pytest.raises(ConfigError, match="no 'label'"):
        build("supcon", dataset=tiny_images(labels=False), losses=("supcon",))
    with pytest.raises(ConfigError, match="no loss uses the labels"):
        build("supcon", losses=("infonce",))
