"""Gaussian blur: only the selected images change."""

from __future__ import annotations

import torch

from manyview_vision.views import GaussianBlur


def test_blur_only_touches_selected_images(gen, images):
    x = images(40, seed=15)
    blur = GaussianBlur(p=0.5)
    params = blur.draw(40, (16, 16), gen(16), torch.device("cpu"))
    out = blur.apply(x.clone(), params)
    changed = (out - x).flatten(1).abs().amax(1) > 0
    assert not bool((changed & ~params["blur"]).any()), "an unselected image changed"
    assert int(changed.sum()) >= int(params["blur"].sum()) - 2  # sigma ~0.1 is the identity
