"""The batched operations equal torchvision's per-image functions, sample by sample."""

from __future__ import annotations

import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from manyview_vision import functional as VF

N = 5


def per_image(fn, x, params):
    return torch.stack([fn(x[i], float(params[i])) for i in range(len(x))])


@pytest.fixture(params=[(3, 13, 17), (1, 9, 9), (3, 8, 8)], ids=["rgb13x17", "gray9", "rgb8"])
def images(request):
    c, h, w = request.param
    return torch.rand(N, c, h, w, generator=torch.Generator().manual_seed(0))


def factors(lo, hi, seed=1):
    return lo + (hi - lo) * torch.rand(N, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(
    "ours, theirs, lo, hi",
    [
        (VF.adjust_brightness, TF.adjust_brightness, 0.2, 1.8),
        (VF.adjust_contrast, TF.adjust_contrast, 0.2, 1.8),
        (VF.adjust_saturation, TF.adjust_saturation, 0.2, 1.8),
        (VF.adjust_hue, TF.adjust_hue, -0.5, 0.5),
    ],
    ids=["brightness", "contrast", "saturation", "hue"],
)
def test_colour_ops_match_torchvision(images, ours, theirs, lo, hi):
    f = factors(lo, hi)
    expected = per_image(theirs, images, f)
    before = images.clone()
    torch.testing.assert_close(ours(images, f), expected, atol=2e-6, rtol=0)
    assert torch.equal(images, before), "the input was changed"
    if ours is not VF.adjust_hue:
        torch.testing.assert_close(
            ours(images.clone(), f, inplace=True), expected, atol=2e-6, rtol=0
        )


def test_hue_ties_follow_torchvision():
    """Pixels where two or three channels share the maximum (common in 8-bit images)."""
    g = torch.Generator().manual_seed(6)
    x = torch.randint(0, 4, (N, 3, 6, 6), generator=g).float() / 3
    f = factors(-0.5, 0.5)
    torch.testing.assert_close(
        VF.adjust_hue(x, f), per_image(TF.adjust_hue, x, f), atol=2e-6, rtol=0
    )


def test_hue_of_gray_pixels_and_wraparound():
    gray = torch.full((2, 3, 4, 4), 0.5)
    torch.testing.assert_close(VF.adjust_hue(gray, torch.tensor([0.3, -0.5])), gray)
    x = torch.rand(3, 3, 6, 6, generator=torch.Generator().manual_seed(2))
    full = VF.adjust_hue(VF.adjust_hue(x, torch.full((3,), 0.5)), torch.full((3,), 0.5))
    torch.testing.assert_close(full, x, atol=1e-5, rtol=0)


def test_grayscale_and_solarize_match_torchvision(images):
    c = images.shape[1]
    torch.testing.assert_close(
        VF.grayscale(images), TF.rgb_to_grayscale(images, num_output_channels=c)
    )
    torch.testing.assert_close(VF.solarize(images, 0.4), TF.solarize(images, 0.4))


@pytest.mark.parametrize("kernel_size", [3, 5, 9])
def test_blur_matches_torchvision(images, kernel_size):
    if kernel_size // 2 >= min(images.shape[-2:]):
        pytest.skip("torchvision's reflect padding needs a kernel smaller than the image")
    sigma = factors(0.1, 2.0)
    expected = torch.stack(
        [TF.gaussian_blur(images[i], [kernel_size] * 2, [float(sigma[i])] * 2) for i in range(N)]
    )
    torch.testing.assert_close(
        VF.gaussian_blur(images, sigma, kernel_size), expected, atol=2e-6, rtol=0
    )


def test_blur_conv_path_matches_matrix_path(monkeypatch):
    x = torch.rand(3, 3, 20, 24, generator=torch.Generator().manual_seed(3))
    sigma = torch.tensor([0.3, 1.0, 2.0])
    dense = VF.gaussian_blur(x, sigma, 7)
    monkeypatch.setattr(VF, "MATMUL_BLUR_MAX_SIDE", 8)
    torch.testing.assert_close(VF.gaussian_blur(x, sigma, 7), dense, atol=1e-6, rtol=0)


def test_blur_kernel_larger_than_a_tiny_image():
    x = torch.rand(2, 1, 3, 3, generator=torch.Generator().manual_seed(4))
    out = VF.gaussian_blur(x, torch.tensor([1.0, 2.0]), 23)
    assert out.shape == x.shape and torch.isfinite(out).all()
    # A blur keeps the mean of a constant image and stays within the input's range.
    const = torch.full((1, 1, 2, 2), 0.25)
    torch.testing.assert_close(VF.gaussian_blur(const, torch.tensor([1.5]), 9), const)
    assert out.min() >= x.min() - 1e-6 and out.max() <= x.max() + 1e-6


def boxes(h, w, seed=5):
    g = torch.Generator().manual_seed(seed)
    bh = torch.randint(1, h + 1, (N,), generator=g)
    bw = torch.randint(1, w + 1, (N,), generator=g)
    top = (torch.rand(N, generator=g) * (h - bh + 1)).long()
    left = (torch.rand(N, generator=g) * (w - bw + 1)).long()
    return top, left, bh, bw


@pytest.mark.parametrize("size", [(8, 8), (13, 17), (4, 6)])
def test_resized_crop_matches_torchvision_without_antialias(images, size):
    top, left, bh, bw = boxes(*images.shape[-2:])
    flip = torch.tensor([True, False, True, False, False])
    ours = VF.resized_crop(images, top, left, bh, bw, size, flip=flip)
    ref = torch.stack(
        [
            TF.resized_crop(
                images[i],
                int(top[i]),
                int(left[i]),
                int(bh[i]),
                int(bw[i]),
                list(size),
                antialias=False,
            )
            for i in range(N)
        ]
    )
    ref = torch.where(flip[:, None, None, None], ref.flip(-1), ref)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)


def test_whole_image_crop_is_the_identity():
    x = torch.rand(2, 3, 7, 9)
    full = [torch.tensor([0, 0]), torch.tensor([0, 0]), torch.tensor([7, 7]), torch.tensor([9, 9])]
    torch.testing.assert_close(VF.resized_crop(x, *full, (7, 9)), x, atol=1e-6, rtol=0)


def test_normalize():
    x = torch.rand(2, 3, 4, 4)
    mean, std = torch.tensor([0.1, 0.2, 0.3]), torch.tensor([0.5, 0.25, 2.0])
    torch.testing.assert_close(
        VF.normalize(x, mean, std), TF.normalize(x, mean.tolist(), std.tolist())
    )


def test_checks():
    assert VF.check_images(torch.zeros(2, 5, 5), "t").shape == (2, 1, 5, 5)
    out = VF.to_float_images(torch.full((1, 3, 2, 2), 255, dtype=torch.uint8), "t")
    assert out.dtype == torch.float32 and torch.all(out == 1.0)
    for bad in (
        torch.zeros(5, 5),
        torch.zeros(1, 1, 1, 2, 2),
        torch.zeros(2, 3, 4, 4, dtype=torch.int64),
        "x",
    ):
        with pytest.raises(ValueError, match="t: expects"):
            VF.check_images(bad, "t")
