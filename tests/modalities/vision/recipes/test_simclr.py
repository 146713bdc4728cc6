"""The simclr recipe on a tiny image dataset: views and head, a single-view pipeline, and
`manyview train` end to end."""

from __future__ import annotations

import sys
import types

import torch

import manyview


def test_simclr_fills_views_and_head(build, step):
    recipe, data = build("simclr")
    assert recipe.num_views == {"image": 2} and recipe.calls == {"image": 1}
    assert type(recipe.views["image"].views[0]).__name__ == "ViewSet"
    head = recipe.model["projectors"]["image"]
    assert head.net[0].out_features == 512 and head.output_dim == 128
    out = step(recipe, data)
    assert out.embeddings.shape == (8, 2, 128)


def test_simclr_with_a_single_view_pipeline(build, step):
    recipe, data = build("simclr", views=[{"name": "image_augment"}], num_views=2, projector_dim=16)
    assert recipe.calls == {"image": 2}
    assert step(recipe, data).embeddings.shape == (8, 2, 16)


def test_train_a_few_steps(tmp_path, fresh_plugins, image_config, tiny_images):
    """`manyview train` end to end with recipe = "simclr" on an in-process image dataset."""
    from manyview import manager
    from manyview.training.trainer import Trainer

    plugin = types.ModuleType("tiny_images_plugin")

    @manyview.hookimpl
    def manyview_register_datasets(register):
        register("tiny_images", tiny_images, summary="tiny images for a test")

    plugin.manyview_register_datasets = manyview_register_datasets
    sys.modules[plugin.__name__] = plugin
    try:
        manager.register_plugin(plugin, name="tiny_images_plugin")
        cfg = image_config("simclr")
        cfg["data"] = {"name": "tiny_images", "options": {"n": 32}, "drop_last": True}
        cfg["run"].update(steps=3, batch_size=8, log_every=1, metrics_every=0, checkpoint_every=3)
        metrics = Trainer(cfg, tmp_path / "run", progress=False).fit()
    finally:
        sys.modules.pop(plugin.__name__, None)
    assert metrics["step"] == 3 and torch.isfinite(torch.tensor(metrics["loss"]))
