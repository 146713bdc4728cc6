"""SpecAugment: frequency and time masks within their widths, filling only masked cells."""

from __future__ import annotations

import torch

from manyview_speech import views as V


def test_spec_augment_masks_lie_within_their_widths(g):
    view = V.SpecAugment(freq_masks=1, freq_width=7, time_masks=1, time_width=12)
    freq, time = view.masks(256, 64, 100, generator=g(0))
    for mask, width in ((freq, 7), (time, 12)):
        counts = mask.sum(1)
        assert counts.max() <= width and counts.max() == width and counts.min() == 0
        for row in mask[counts > 0]:  # one contiguous band per row
            idx = row.nonzero().flatten()
            assert idx[-1] - idx[0] + 1 == idx.numel()
    several = V.SpecAugment(freq_masks=3, freq_width=5, time_masks=2, time_width=4)
    freq, time = several.masks(256, 40, 50, generator=g(1))
    assert freq.sum(1).max() <= 15 and time.sum(1).max() <= 8


def test_spec_augment_fills_only_the_masked_cells(g):
    x = torch.randn(16, 40, 60, generator=g(5))
    view = V.SpecAugment(2, 6, 2, 10, fill="zero")
    out = view(x, generator=g(7))
    freq, time = view.masks(16, 40, 60, generator=g(7))
    cells = freq[:, :, None] | time[:, None, :]
    assert torch.equal(out[~cells], x[~cells]) and (out[cells] == 0).all() and cells.any()
    mean = V.SpecAugment(fill="mean")(x, generator=g(7))
    changed = mean != x
    assert torch.allclose(mean[changed], x.mean((1, 2), keepdim=True).expand_as(x)[changed])
