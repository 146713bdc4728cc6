"""image_augment: processing in blocks gives the same result."""

from __future__ import annotations

import torch

from manyview_vision.views import ImageAugment


def test_blocked_processing_gives_the_same_result(monkeypatch, gen, images):
    from manyview_vision import functional as VF

    x = images(9, seed=13)
    whole = ImageAugment(blur_p=0.7)(x, generator=gen(14))
    monkeypatch.setattr(VF, "BLOCK_ELEMENTS", 3 * 16 * 16 * 2)  # blocks of two images
    torch.testing.assert_close(ImageAugment(blur_p=0.7)(x, generator=gen(14)), whole)
