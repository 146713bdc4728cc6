"""The per-sample parameters follow torchvision's distributions (checked statistically)."""

from __future__ import annotations

import math

import torch
from torchvision.transforms import v2

from manyview_vision import sampling
from manyview_vision.views import (
    ColorJitter,
    GaussianBlur,
    HorizontalFlip,
    ImageAugment,
    RandomGrayscale,
    RandomResizedCrop,
    RandomSolarize,
)

DRAWS = 8000


def ks(a: torch.Tensor, b: torch.Tensor) -> float:
    """Two-sample Kolmogorov-Smirnov statistic."""
    a, b = a.double().sort().values, b.double().sort().values
    grid = torch.cat([a, b])
    fa = torch.searchsorted(a, grid, right=True) / len(a)
    fb = torch.searchsorted(b, grid, right=True) / len(b)
    return float((fa - fb).abs().max())


KS_LIMIT = 1.95 * math.sqrt(2 / DRAWS)  # alpha = 0.001 for two samples of DRAWS


def torchvision_boxes(h, w, scale, ratio, n):
    t = v2.RandomResizedCrop(8, scale=scale, ratio=ratio)
    torch.manual_seed(0)
    rows = [t.make_params([torch.empty(3, h, w)]) for _ in range(n)]
    return {k: torch.tensor([r[k] for r in rows]) for k in ("top", "left", "height", "width")}


def test_crop_boxes_follow_torchvision():
    h, w, scale, ratio = 60, 80, (0.08, 1.0), (3 / 4, 4 / 3)
    top, left, bh, bw = sampling.resized_crop_boxes(
        DRAWS, h, w, scale, ratio, torch.Generator().manual_seed(0)
    )
    ref = torchvision_boxes(h, w, scale, ratio, DRAWS)
    assert bool(((bh >= 1) & (bw >= 1) & (top >= 0) & (left >= 0)).all())
    assert bool(((top + bh <= h) & (left + bw <= w)).all()), "a box leaves the image"
    area = bh * bw / (h * w)
    log_ratio = torch.log(bw / bh)
    # Rounding to whole pixels moves the area and ratio a little past the ranges.
    assert area.min() > 0.06 and area.max() <= 1.0
    assert log_ratio.abs().max() < math.log(4 / 3) + 0.1
    ref_area = ref["height"] * ref["width"] / (h * w)
    ref_ratio = torch.log(ref["width"] / ref["height"])
    assert ks(area, ref_area) < KS_LIMIT
    assert ks(log_ratio, ref_ratio) < KS_LIMIT
    # Placement: uniform over the free positions.
    assert ks(top / (h - bh + 1).clamp_min(1), ref["top"] / (h - ref["height"] + 1)) < KS_LIMIT


def test_crop_fallback_is_torchvision_centre_crop():
    # A ratio range the image cannot meet at this scale: every try fails.
    top, left, bh, bw = sampling.resized_crop_boxes(
        50, 10, 40, (0.99, 1.0), (0.5, 1.0), torch.Generator().manual_seed(1)
    )
    ref = torchvision_boxes(10, 40, (0.99, 1.0), (0.5, 1.0), 1)
    assert set(bh.tolist()) == {int(ref["height"])} and set(bw.tolist()) == {int(ref["width"])}
    assert set(top.tolist()) == {int(ref["top"])} and set(left.tolist()) == {int(ref["left"])}


def test_crop_view_scale_range_is_respected():
    crop = RandomResizedCrop(scale=(0.5, 0.6))
    p = crop.draw(DRAWS, (100, 100), torch.Generator().manual_seed(2), torch.device("cpu"))
    area = p["height"] * p["width"] / 1e4
    assert area.min() > 0.48 and area.max() < 0.62
    assert abs(float(area.mean()) - 0.55) < 0.005


def test_jitter_ranges_equal_torchvision():
    ours = ColorJitter(0.8, 0.8, 0.8, 0.2)
    theirs = v2.ColorJitter(0.8, 0.8, 0.8, 0.2)
    for r, name in zip(ours.ranges, ("brightness", "contrast", "saturation", "hue"), strict=True):
        assert r == tuple(getattr(theirs, name))
    assert ColorJitter(0, (0.5, 1.5), 0, 0).ranges == (None, (0.5, 1.5), None, None)


def test_jitter_factors_are_uniform_in_their_ranges():
    jitter = ColorJitter(0.8, 0.4, (0.5, 1.0), 0.2, p=0.8)
    p = jitter.draw(DRAWS, (8, 8), torch.Generator().manual_seed(3), torch.device("cpu"))
    for name, (lo, hi) in zip(
        ("brightness", "contrast", "saturation", "hue"), jitter.ranges, strict=True
    ):
        f = p[name]
        assert float(f.min()) >= lo and float(f.max()) <= hi, name
        uniform = lo + (hi - lo) * torch.rand(DRAWS, generator=torch.Generator().manual_seed(9))
        assert ks(f, uniform) < KS_LIMIT, name
    rate = float(p["apply"].float().mean())
    assert abs(rate - 0.8) < 4 * math.sqrt(0.8 * 0.2 / DRAWS)
    # Orders: uniformly random permutations of the four operations.
    order = p["order"]
    assert bool((order.sort(dim=1).values == torch.arange(4)).all())
    counts = torch.unique(order, dim=0, return_counts=True)[1]
    assert len(counts) == 24
    expected = DRAWS / 24
    assert float(((counts - expected) ** 2 / expected).sum()) < 60  # chi2(23) p ~ 3e-5


def test_blur_sigma_and_probabilities():
    blur = GaussianBlur(sigma=(0.1, 2.0), p=0.5)
    p = blur.draw(DRAWS, (8, 8), torch.Generator().manual_seed(4), torch.device("cpu"))
    assert float(p["sigma"].min()) >= 0.1 and float(p["sigma"].max()) <= 2.0
    assert abs(float(p["sigma"].mean()) - 1.05) < 0.03
    assert abs(float(p["blur"].float().mean()) - 0.5) < 4 * math.sqrt(0.25 / DRAWS)


def test_flip_grayscale_and_solarize_fire_at_their_rates():
    """Counted on images where each operation leaves a mark: a red left column."""
    n = 4000
    x = torch.zeros(n, 3, 2, 2)
    x[:, 0, :, 0] = 1.0
    g = torch.Generator().manual_seed(5)
    flipped = HorizontalFlip(0.5)(x, generator=g)[:, 0, 0, 1] == 1.0
    gray = RandomGrayscale(0.3)(x, generator=g)[:, 1, 0, 0] > 0
    solarized = RandomSolarize(threshold=1.0, p=0.25)(x, generator=g)[:, 0, 0, 0] == 0.0
    for hits, p in ((flipped, 0.5), (gray, 0.3), (solarized, 0.25)):
        rate = float(hits.float().mean())
        assert abs(rate - p) < 4 * math.sqrt(p * (1 - p) / n), (rate, p)
    crop_flip = ImageAugment(
        scale=(1.0, 1.0), ratio=(1.0, 1.0), jitter_p=0.0, grayscale_p=0.0, blur_p=0.0
    )(x, generator=g)
    assert abs(float((crop_flip[:, 0, 0, 1] == 1.0).float().mean()) - 0.5) < 0.035
