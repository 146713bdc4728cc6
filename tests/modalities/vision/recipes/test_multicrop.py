"""The multicrop recipe: each crop size encoded once, view-set options and repeats."""

from __future__ import annotations

import pytest

from manyview.config import ConfigError


def test_multicrop_encodes_each_size_once(build, step):
    recipe, data = build("multicrop", losses=("mv_infonce",))
    assert recipe.num_views == {"image": 8}
    calls = []
    recipe.model["encoders"]["image"].register_forward_hook(
        lambda m, i, o: calls.append(i[0].shape)
    )
    out = step(recipe, data)
    assert out.embeddings.shape == (8, 8, 128)
    assert sorted(tuple(c) for c in calls) == [(16, 1, 8, 8), (48, 1, 3, 3)]


def test_multicrop_options_and_repeats(build, step):
    views = [{"name": "dino", "options": {"local_crops": 2}}]
    recipe, data = build("multicrop", losses=("mv_infonce",), views=views, num_views=8)
    assert recipe.num_views == {"image": 8} and recipe.calls == {"image": 2}
    assert step(recipe, data).embeddings.shape[1] == 8
    with pytest.raises(ConfigError, match="not a multiple"):
        build("multicrop", losses=("mv_infonce",), views=views, num_views=6)
