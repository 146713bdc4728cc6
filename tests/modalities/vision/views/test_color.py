"""Colour views: the batched jitter against torchvision per sample, grayscale."""

from __future__ import annotations

import torch
from torchvision.transforms.v2 import functional as TF

from manyview_vision.views import ColorJitter, RandomGrayscale


def test_jitter_applies_each_sample_in_its_own_order(gen, images):
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


def test_grayscale_keeps_channels(gen, images):
    out = RandomGrayscale(p=1.0)(images(), generator=gen(0))
    assert out.shape == (6, 3, 16, 16)
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 1], out[:, 2])
