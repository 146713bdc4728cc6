"""View sets (simclr, byol, multicrop, dino): views that differ per sample, their shapes,
no list input, the normalize option."""

from __future__ import annotations

import pytest
import torch

import manyview
from manyview_vision.views import RandomResizedCrop, byol, dino, multicrop, simclr


@pytest.mark.parametrize("name", ["simclr", "byol", "dino", "multicrop"])
def test_the_views_of_a_set_differ(name, gen, images):
    views = manyview.create("view", name)(images(), generator=gen(3))
    assert not torch.equal(views[0], views[1])
    # and per sample, not only somewhere in the batch
    same = (views[0] - views[1]).flatten(1).abs().amax(1) == 0
    assert not bool(same.any())


def test_output_shapes_of_crops_and_view_sets(gen, images):
    x = images(4, 3, 32, 32)
    assert RandomResizedCrop(8)(x, generator=gen(0)).shape == (4, 3, 8, 8)
    assert RandomResizedCrop((6, 10))(x, generator=gen(0)).shape == (4, 3, 6, 10)
    views = multicrop(global_crops=3, local_crops=2)(x, generator=gen(0))
    assert [tuple(v.shape[-2:]) for v in views] == [(32, 32)] * 3 + [(14, 14)] * 2
    views = dino(local_crops=2, global_size=24, local_size=8)(x, generator=gen(0))
    assert [tuple(v.shape[-2:]) for v in views] == [(24, 24)] * 2 + [(8, 8)] * 2
    views = multicrop(global_size=224, local_crops=1)(x, generator=gen(0))
    assert tuple(views[-1].shape[-2:]) == (96, 96)
    assert simclr(size=20)(x, generator=gen(0))[1].shape == (4, 3, 20, 20)


def test_view_set_refuses_a_list(gen, images):
    with pytest.raises(ValueError, match="not a list"):
        simclr()([images(), images()], generator=gen(0))


def test_normalize_option_of_the_sets(gen, images):
    views = byol(mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))(images(), generator=gen(0))
    assert float(views[0].min()) < 0.0 or float(views[0].max()) > 1.0
