"""image_normalize: after a view set in a pipeline, as torchvision normalizes."""

from __future__ import annotations

import torch
from torchvision.transforms.v2 import functional as TF

from manyview_vision.views import Normalize, simclr


def test_views_follow_a_view_set_in_a_pipeline(gen, images):
    views = simclr()(images(), generator=gen(0))
    normalized = Normalize()(views, generator=gen(0))
    assert isinstance(normalized, list) and len(normalized) == 2
    torch.testing.assert_close(
        normalized[0], TF.normalize(views[0], [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    )
