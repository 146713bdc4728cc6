"""The image recipes (simclr, multicrop, supcon) on a tiny image dataset."""

from __future__ import annotations

import sys
import types

import pytest
import torch
from torch.utils.data import default_collate

import manyview
from manyview.config import ConfigError, validate


class TinyImages:
    """8 x 8 single-channel uint8 images of two classes (a bright square's position)."""

    def __init__(self, n: int = 16, labels: bool = True, channels: int = 1, side: int = 8):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randint(0, 60, (n, channels, side, side), dtype=torch.uint8, generator=g)
        self.y = torch.arange(n) % 2
        for i in range(n):
            r = 0 if self.y[i] == 0 else side // 2
            self.x[i, :, r : r + side // 2, r : r + side // 2] = 220
        self.labels = labels

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict:
        item = {"image": self.x[i], "index": i}
        if self.labels:
            item["label"] = int(self.y[i])
        return item


def config(recipe: str, losses=("infonce",), **image) -> dict:
    modality = {
        "encoder": "small_cnn",
        "encoder_options": {"in_chans": 1, "width": 8, "output_dim": 32},
    }
    modality.update(image)
    return validate(
        {
            "run": {"recipe": recipe},
            "data": {"name": "tiny"},
            "modalities": {"image": modality},
            "losses": [{"name": name} for name in losses],
        }
    )


def build(recipe: str, dataset=None, **kwargs):
    dataset = dataset or TinyImages()
    cfg = config(recipe, **kwargs)
    return manyview.entry("recipe", recipe).load()(cfg, dataset), dataset


def step(recipe, dataset, n=8):
    batch = default_collate([dataset[i] for i in range(n)])
    out = recipe.step(batch, torch.Generator().manual_seed(0))
    assert out.loss.dim() == 0 and torch.isfinite(out.loss)
    out.loss.backward()
    grads = [p.grad for p in recipe.model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    return out


def test_registered():
    for name in ("simclr", "multicrop", "supcon"):
        assert manyview.entry("recipe", name).plugin == "manyview-vision"


def test_simclr_fills_views_and_head():
    recipe, data = build("simclr")
    assert recipe.num_views == {"image": 2} and recipe.calls == {"image": 1}
    assert type(recipe.views["image"].views[0]).__name__ == "ViewSet"
    head = recipe.model["projectors"]["image"]
    assert head.net[0].out_features == 512 and head.output_dim == 128
    out = step(recipe, data)
    assert out.embeddings.shape == (8, 2, 128)


def test_simclr_with_a_single_view_pipeline():
    recipe, data = build("simclr", views=[{"name": "image_augment"}], num_views=2, projector_dim=16)
    assert recipe.calls == {"image": 2}
    assert step(recipe, data).embeddings.shape == (8, 2, 16)


def test_multicrop_encodes_each_size_once():
    recipe, data = build("multicrop", losses=("mv_infonce",))
    assert recipe.num_views == {"image": 8}
    calls = []
    recipe.model["encoders"]["image"].register_forward_hook(
        lambda m, i, o: calls.append(i[0].shape)
    )
    out = step(recipe, data)
    assert out.embeddings.shape == (8, 8, 128)
    assert sorted(tuple(c) for c in calls) == [(16, 1, 8, 8), (48, 1, 3, 3)]


def test_multicrop_options_and_repeats():
    views = [{"name": "dino", "options": {"local_crops": 2}}]
    recipe, data = build("multicrop", losses=("mv_infonce",), views=views, num_views=8)
    assert recipe.num_views == {"image": 8} and recipe.calls == {"image": 2}
    assert step(recipe, data).embeddings.shape[1] == 8
    with pytest.raises(ConfigError, match="not a multiple"):
        build("multicrop", losses=("mv_infonce",), views=views, num_views=6)


def test_supcon_needs_labels_and_a_label_loss():
    recipe, data = build("supcon", losses=("supcon",))
    step(recipe, data)
    with pytest.raises(ConfigError, match="no 'label'"):
        build("supcon", dataset=TinyImages(labels=False), losses=("supcon",))
    with pytest.raises(ConfigError, match="no loss uses the labels"):
        build("supcon", losses=("infonce",))


def test_recipe_errors():
    with pytest.raises(ConfigError, match="no modality has an image encoder"):
        manyview.entry("recipe", "simclr").load()(
            validate(
                {
                    "data": {"name": "x"},
                    "modalities": {"image": {"encoder": "mlp"}},
                    "losses": [{"name": "infonce"}],
                }
            ),
            TinyImages(),
        )
    with pytest.raises(ConfigError, match="at most one view set"):
        build("simclr", views=[{"name": "simclr"}, {"name": "byol"}])
    with pytest.raises(ConfigError, match=r"takes 2\.\.2 views"):
        build("multicrop", losses=("dhel",))


def test_core_contrastive_recipe_takes_image_augment():
    """The core recipe, unchanged: one tensor per view call."""
    cfg = config("contrastive", views=[{"name": "image_augment"}], num_views=2)
    recipe = manyview.entry("recipe", "contrastive").load()(cfg, TinyImages())
    step(recipe, TinyImages())


def test_train_a_few_steps(tmp_path, fresh_plugins):
    """`manyview train` end to end with recipe = "simclr" on an in-process image dataset."""
    from manyview import manager
    from manyview.training.trainer import Trainer

    plugin = types.ModuleType("tiny_images_plugin")

    @manyview.hookimpl
    def manyview_register_datasets(register):
        register("tiny_images", TinyImages, summary="tiny images for a test")

    plugin.manyview_register_datasets = manyview_register_datasets
    sys.modules[plugin.__name__] = plugin
    try:
        manager.register_plugin(plugin, name="tiny_images_plugin")
        cfg = config("simclr")
        cfg["data"] = {"name": "tiny_images", "options": {"n": 32}, "drop_last": True}
        cfg["run"].update(steps=3, batch_size=8, log_every=1, metrics_every=0, checkpoint_every=3)
        metrics = Trainer(cfg, tmp_path / "run", progress=False).fit()
    finally:
        sys.modules.pop(plugin.__name__, None)
    assert metrics["step"] == 3 and torch.isfinite(torch.tensor(metrics["loss"]))


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
