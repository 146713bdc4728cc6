"""Every registered image view: shapes, dtypes, ranges, determinism, tiny and one-channel
images, bad input and options."""

from __future__ import annotations

import pytest
import torch

import manyview
from manyview_vision.views import (
    ColorJitter,
    GaussianBlur,
    ImageAugment,
    Normalize,
    RandomResizedCrop,
    ViewSet,
    byol,
    dino,
    multicrop,
    simclr,
)

SINGLE = [
    "random_resized_crop",
    "horizontal_flip",
    "color_jitter",
    "random_grayscale",
    "gaussian_blur",
    "solarize",
    "image_augment",
]
SETS = {"simclr": 2, "byol": 2, "multicrop": 8, "dino": 10}


def as_list(out):
    return out if isinstance(out, list) else [out]


def test_registered_with_modality_image():
    for name in [*SINGLE, "image_normalize", *SETS]:
        entry = manyview.entry("view", name)
        assert entry.modality == "image" and entry.plugin == "manyview-vision", name
        assert entry.summary
    for name, count in SETS.items():
        assert manyview.entry("view", name).meta["views_per_call"] == count
        assert manyview.create("view", name).views_per_call == count


@pytest.mark.parametrize("name", SINGLE + list(SETS))
@pytest.mark.parametrize(
    "shape", [(3, 16, 16), (1, 8, 8), (3, 9, 13)], ids=["rgb16", "gray8", "rgb9x13"]
)
def test_shapes_dtypes_ranges_determinism(name, shape, gen):
    view = manyview.create("view", name)
    x = torch.rand(5, *shape, generator=gen(1))
    before = x.clone()
    a = as_list(view(x, generator=gen(2)))
    b = as_list(view(x, generator=gen(2)))
    assert torch.equal(x, before), "the view changed its input"
    assert len(a) == SETS.get(name, 1)
    for va, vb in zip(a, b, strict=True):
        assert torch.equal(va, vb), "not deterministic under a seeded generator"
        assert va.dtype == torch.float32 and va.shape[:2] == (5, shape[0])
        assert float(va.min()) >= 0.0 and float(va.max()) <= 1.0
    assert a[0].shape[-2:] == shape[-2:], "the first view keeps the input size by default"


@pytest.mark.parametrize("name", ["random_resized_crop", "color_jitter", "image_augment", "simclr"])
def test_another_seed_gives_another_view(name, gen, images):
    view = manyview.create("view", name)
    x = images()
    a, b = as_list(view(x, generator=gen(1)))[0], as_list(view(x, generator=gen(2)))[0]
    assert not torch.equal(a, b)


def test_uint8_input_is_converted(gen):
    x8 = torch.randint(0, 256, (4, 3, 12, 12), dtype=torch.uint8, generator=gen(4))
    crop = RandomResizedCrop(scale=(1.0, 1.0), ratio=(1.0, 1.0))
    out = crop(x8, generator=gen(5))
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, x8.float() / 255, atol=1e-6, rtol=0)
    aug = ImageAugment()
    torch.testing.assert_close(
        aug(x8, generator=gen(6)), aug(x8.float() / 255, generator=gen(6)), atol=1e-5, rtol=0
    )
    assert ColorJitter()(x8, generator=gen(6)).dtype == torch.float32


def test_float64_is_kept(gen, images):
    x = images().double()
    for view in (ImageAugment(), simclr()):
        assert all(v.dtype == torch.float64 for v in as_list(view(x, generator=gen(0))))


def test_three_dim_batch_is_single_channel(gen):
    x = torch.rand(4, 8, 8, generator=gen(7))
    out = ImageAugment()(x, generator=gen(8))
    assert out.shape == (4, 1, 8, 8)
    assert ColorJitter()(x, generator=gen(8)).shape == (4, 1, 8, 8)
    assert torch.equal(x, torch.rand(4, 8, 8, generator=gen(7)))  # input untouched


@pytest.mark.parametrize("side", [1, 2, 3, 8])
def test_tiny_images(side, gen):
    x = torch.rand(3, 1, side, side, generator=gen(9))
    for view in (ImageAugment(), multicrop(), dino(), byol()):
        for v in as_list(view(x, generator=gen(10))):
            assert v.shape[:2] == (3, 1) and torch.isfinite(v).all()


@pytest.mark.parametrize(
    "bad, match",
    [
        (torch.rand(4, 16), "expects images"),
        (torch.rand(2, 3, 4, 4, 4), "expects images"),
        (torch.randint(0, 255, (2, 3, 4, 4)), "int64"),
        (torch.zeros(2, 3, 4, 4, dtype=torch.bool), "bool"),
        ("image.png", "tensor"),
    ],
)
def test_bad_input_is_a_clear_value_error(bad, match, gen):
    for view in (ImageAugment(), simclr(), ColorJitter()):
        with pytest.raises(ValueError, match=match):
            view(bad, generator=gen(0))


def test_channel_mismatch(gen):
    with pytest.raises(ValueError, match=r"3 channels|1 channel"):
        ColorJitter()(torch.rand(2, 4, 8, 8), generator=gen(0))
    with pytest.raises(ValueError, match="3 channels"):
        ImageAugment()(torch.rand(2, 2, 8, 8), generator=gen(0))
    with pytest.raises(ValueError, match="3 means and stds for images with 1 channels"):
        Normalize()(torch.rand(2, 1, 8, 8), generator=gen(0))
    Normalize(mean=(0.5,), std=(0.5,))(torch.rand(2, 1, 8, 8))  # one value for all channels


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: RandomResizedCrop(scale=(0.5, 0.2)), "low <= high"),
        (lambda: RandomResizedCrop(scale=(0.0, 1.0)), r"\(0, 1\]"),
        (lambda: RandomResizedCrop(size=0), "positive int"),
        (lambda: ColorJitter(brightness=-1), ">= 0"),
        (lambda: ColorJitter(hue=0.7), r"\[0, 0.5\]"),
        (lambda: ColorJitter(hue=(-0.6, 0.1)), "within"),
        (lambda: ColorJitter(p=1.5), "probability"),
        (lambda: GaussianBlur(kernel_size=4), "odd"),
        (lambda: GaussianBlur(sigma=(0.0, 1.0)), "positive"),
        (lambda: Normalize(mean=(0.5, 0.5), std=(0.5,)), "same length"),
        (lambda: Normalize(std=(1.0, 0.0, 1.0)), "positive"),
        (lambda: ImageAugment(mean=(0.5,)), "both mean and std"),
        (lambda: multicrop(global_crops=0), "global_crops"),
        (lambda: dino(local_crops=-1), "local_crops"),
        (lambda: simclr(strength=-1), "strength"),
        (lambda: ViewSet([]), "at least one"),
    ],
)
def test_bad_options(make, match):
    with pytest.raises(ValueError, match=match):
        make()
