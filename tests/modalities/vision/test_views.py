"""Image views: shapes, dtypes, ranges, determinism, tiny and one-channel images, bad input."""

from __future__ import annotations

import pytest
import torch
from torchvision.transforms.v2 import functional as TF

import manyview
from manyview_vision.views import (
    ColorJitter,
    GaussianBlur,
    ImageAugment,
    Normalize,
    RandomGrayscale,
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


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(n=6, c=3, h=16, w=16, seed=0) -> torch.Tensor:
    return torch.rand(n, c, h, w, generator=gen(seed))


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
def test_shapes_dtypes_ranges_determinism(name, shape):
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
def test_another_seed_gives_another_view(name):
    view = manyview.create("view", name)
    x = images()
    a, b = as_list(view(x, generator=gen(1)))[0], as_list(view(x, generator=gen(2)))[0]
    assert not torch.equal(a, b)


@pytest.mark.parametrize("name", ["simclr", "byol", "dino", "multicrop"])
def test_the_views_of_a_set_differ(name):
    views = manyview.create("view", name)(images(), generator=gen(3))
    assert not torch.equal(views[0], views[1])
    # and per sample, not only somewhere in the batch
    same = (views[0] - views[1]).flatten(1).abs().amax(1) == 0
    assert not bool(same.any())


def test_uint8_input_is_converted():
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


def test_float64_is_kept():
    x = images().double()
    for view in (ImageAugment(), simclr()):
        assert all(v.dtype == torch.float64 for v in as_list(view(x, generator=gen(0))))


def test_three_dim_batch_is_single_channel():
    x = torch.rand(4, 8, 8, generator=gen(7))
    out = ImageAugment()(x, generator=gen(8))
    assert out.shape == (4, 1, 8, 8)
    assert ColorJitter()(x, generator=gen(8)).shape == (4, 1, 8, 8)
    assert torch.equal(x, torch.rand(4, 8, 8, generator=gen(7)))  # input untouched


@pytest.mark.parametrize("side", [1, 2, 3, 8])
def test_tiny_images(side):
    x = torch.rand(3, 1, side, side, generator=gen(9))
    for view in (ImageAugment(), multicrop(), dino(), byol()):
        for v in as_list(view(x, generator=gen(10))):
            assert v.shape[:2] == (3, 1) and torch.isfinite(v).all()


def test_output_shapes_of_crops_and_view_sets():
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


def test_views_follow_a_view_set_in_a_pipeline():
    views = simclr()(images(), generator=gen(0))
    normalized = Normalize()(views, generator=gen(0))
    assert isinstance(normalized, list) and len(normalized) == 2
    torch.testing.assert_close(
        normalized[0], TF.normalize(views[0], [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    )


def test_jitter_applies_each_sample_in_its_own_order():
    """The batched jitter equals torchvision's functions applied per sample in the drawn
    order with the drawn factors."""
    x = images(12, seed=11)
    view = ColorJitter(0.8, 0.8, 0.8, 0.2, p=0.7)
    params = view.draw(12, (16, 16), gen(12), torch.device("cpu"))
    out = view.apply(x.clone(), params)
    fns = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue)
    names = ("brightness", "contrast", "saturation", "hue")
    for i in range(12):
        ref = x[i]
        if params["apply"][i]:
            for op in params["order"][i].tolist():
                ref = fns[op](ref, float(params[names[op]][i]))
        torch.testing.assert_close(out[i], ref, atol=2e-6, rtol=0)
    fixed = ColorJitter(random_order=False).draw(5, (4, 4), gen(0), torch.device("cpu"))
    assert bool((fixed["order"] == torch.arange(4)).all())


def test_blocked_processing_gives_the_same_result(monkeypatch):
    from manyview_vision import functional as VF

    x = images(9, seed=13)
    whole = ImageAugment(blur_p=0.7)(x, generator=gen(14))
    monkeypatch.setattr(VF, "BLOCK_ELEMENTS", 3 * 16 * 16 * 2)  # blocks of two images
    torch.testing.assert_close(ImageAugment(blur_p=0.7)(x, generator=gen(14)), whole)


def test_blur_only_touches_selected_images():
    x = images(40, seed=15)
    blur = GaussianBlur(p=0.5)
    params = blur.draw(40, (16, 16), gen(16), torch.device("cpu"))
    out = blur.apply(x.clone(), params)
    changed = (out - x).flatten(1).abs().amax(1) > 0
    assert not bool((changed & ~params["blur"]).any()), "an unselected image changed"
    assert int(changed.sum()) >= int(params["blur"].sum()) - 2  # sigma ~0.1 is the identity


def test_grayscale_keeps_channels():
    out = RandomGrayscale(p=1.0)(images(), generator=gen(0))
    assert out.shape == (6, 3, 16, 16)
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 1], out[:, 2])


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
def test_bad_input_is_a_clear_value_error(bad, match):
    for view in (ImageAugment(), simclr(), ColorJitter()):
        with pytest.raises(ValueError, match=match):
            view(bad, generator=gen(0))


def test_channel_mismatch():
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


def test_view_set_refuses_a_list():
    with pytest.raises(ValueError, match="not a list"):
        simclr()([images(), images()], generator=gen(0))


def test_normalize_option_of_the_sets():
    views = byol(mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))(images(), generator=gen(0))
    assert float(views[0].min()) < 0.0 or float(views[0].max()) > 1.0
