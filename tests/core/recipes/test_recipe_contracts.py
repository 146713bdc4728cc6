"""Every registered recipe satisfies the recipe protocol (manyview.testing's recipe checks),
and trains one step through the trainer with and without ``[run] gradcache_chunk``."""

from __future__ import annotations

import pytest

import manyview
from manyview.config import ConfigError
from manyview.recipes import EmbedRecipe
from manyview.testing.recipes import (
    RECIPE_CHECKS,
    check_recipe_resume,
    check_recipe_steps,
    example_config,
)
from manyview.training.trainer import Trainer

RECIPES = manyview.available("recipe")


def test_the_registry_has_the_recipes_of_the_core_and_the_modalities():
    expected = {
        "contrastive",
        "distill",
        "simclr",
        "multicrop",
        "supcon",
        "speech_supcon",
        "audio_text",
    }
    assert expected <= set(RECIPES)


@pytest.mark.parametrize("name", RECIPES)
@pytest.mark.parametrize("check", sorted(RECIPE_CHECKS))
def test_recipe_contract(name, check):
    RECIPE_CHECKS[check](name)


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_steps(name, tmp_path):
    check_recipe_steps(name, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", RECIPES)
def test_recipe_resume_is_bit_identical(name, tmp_path):
    check_recipe_resume(name, tmp_path)


@pytest.mark.parametrize("name", RECIPES)
def test_one_step_with_and_without_gradcache(name, tmp_path):
    """Through the trainer, as a user would: one step plain, one with gradcache_chunk."""
    sets = ["run.steps=1", "run.log_every=1", "run.checkpoint_every=1"]
    plain = Trainer(example_config(name, sets), tmp_path / "plain", progress=False)
    plain_metrics = plain.fit()
    assert plain_metrics["step"] == 1
    factory = manyview.entry("recipe", name).load()
    cached = Trainer(
        example_config(name, [*sets, "run.gradcache_chunk=3"]), tmp_path / "gc", progress=False
    )
    if issubclass(factory, EmbedRecipe):
        metrics = cached.fit()
        assert metrics["step"] == 1 and cached.bad_steps == 0
        assert set(metrics) == set(plain_metrics)  # the same loss terms are logged
    else:
        with pytest.raises(ConfigError, match="gradcache_chunk"):
            cached.fit()
