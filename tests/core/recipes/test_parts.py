"""The recipes' building blocks: Projector, build_projector, first_sample, recipe_options."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from manyview.config import ConfigError
from manyview.recipes import Projector, build_projector, first_sample, recipe_options


def test_projector_forms_and_their_width():
    assert isinstance(Projector(8).net, nn.Identity) and Projector(8).output_dim == 8
    linear = Projector(8, 8)
    assert isinstance(linear.net, nn.Linear) and linear.output_dim == 8  # asked for: a map
    mlp = Projector(8, 4, hidden=16)
    assert mlp.output_dim == 4 and mlp(torch.randn(3, 8)).shape == (3, 4)
    assert Projector(8, hidden=16).output_dim == 8


def test_build_projector_reads_the_modality_table():
    table = {"projector_dim": 0, "projector_hidden": 0}
    assert isinstance(build_projector(table, 8).net, nn.Identity)
    assert build_projector(table, 8, default_dim=8).output_dim == 8
    assert build_projector({**table, "projector_dim": 5}, 8).output_dim == 5


def test_first_sample_names_what_is_missing():
    data = [{"a": torch.zeros(2), "index": 0}]
    assert first_sample(data, ["a"]) is data[0]
    with pytest.raises(
        ConfigError,
        match=r"\[modalities.b\]: the dataset's samples have no 'b' \(they have \['a'\]\)",
    ):
        first_sample(data, ["a", "b"])
    with pytest.raises(ConfigError, match="supcon recipe: the dataset's samples have no 'label'"):
        first_sample(data, ["a"], label_for="supcon recipe")


def test_recipe_options():
    assert recipe_options({}, {"k": 1}, "r") == {"k": 1}
    assert recipe_options({"recipe_options": {"k": 2}}, {"k": 1}, "r") == {"k": 2}
    with pytest.raises(
        ConfigError, match=r"^\[recipe_options\] \(r\) unknown key 'kk'; did you mean 'k'\?$"
    ):
        recipe_options({"recipe_options": {"kk": 2}}, {"k": 1}, "r")
    with pytest.raises(ConfigError, match="allowed: none"):
        recipe_options({"recipe_options": {"x": 1}}, {}, "r")
