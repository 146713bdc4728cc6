"""What every image recipe does (ImageContrastiveRecipe): its configuration errors, the
core's contrastive recipe beside it, GradCache through the recipe's own embed_views."""

from __future__ import annotations

import pytest

import manyview
from manyview.config import ConfigError, validate


def test_recipe_errors(build, tiny_images):
    with pytest.raises(ConfigError, match="no modality has an image encoder"):
        manyview.entry("recipe", "simclr").load()(
            validate(
                {
                    "data": {"name": "x"},
                    "modalities": {"image": {"encoder": "mlp"}},
                    "losses": [{"name": "infonce"}],
                }
            ),
            tiny_images(),
        )
    with pytest.raises(ConfigError, match="at most one view set"):
        build("simclr", views=[{"name": "simclr"}, {"name": "byol"}])
    with pytest.raises(ConfigError, match=r"takes 2\.\.2 views"):
        build("multicrop", losses=("dhel",))


def test_core_contrastive_recipe_takes_image_augment(step, image_config, tiny_images):
    """The core recipe, unchanged: one tensor per view call."""
    cfg = image_config("contrastive", views=[{"name": "image_augment"}], num_views=2)
    recipe = manyview.entry("recipe", "contrastive").load()(cfg, tiny_images())
    step(recipe, tiny_images())


@pytest.mark.parametrize("name", ["simclr", "multicrop", "supcon"])
def test_view_set_recipes_train_with_gradcache(name, tmp_path):
    """Regression: with [run] gradcache_chunk the view-set recipes' encoders once got the
    view set's list instead of its images; GradCache now runs the recipe's own embed_views."""
    from manyview.testing.recipes import check_recipe_gradcache, example_config
    from manyview.training.trainer import Trainer

    config = example_config(name, ["run.steps=2", "run.gradcache_chunk=2"])
    trainer = Trainer(config, tmp_path / "run", progress=False)
    assert trainer.fit()["step"] == 2 and trainer.bad_steps == 0
    check_recipe_gradcache(name)
