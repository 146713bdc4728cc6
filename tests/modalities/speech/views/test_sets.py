"""View sets: the M pipelines of multi-view training (two_view, multi_view, multi_crop)."""

from __future__ import annotations

import pytest
import torch

from manyview_speech import views as V


def test_views_of_two_view_training_differ(signals, g):
    x = signals.chirp(200, 3000, 1.0).repeat(4, 1)
    one, two = V.view_set("two_view")(x, generator=g(0))
    assert one.shape == two.shape == (4, 64, 101)
    assert not torch.equal(one, two)


def test_multi_crop_view_set_mixes_lengths(signals, g):
    x = signals.tone(440, 1.0).repeat(3, 1)
    outs = V.view_set("multi_crop", num_views=5, global_seconds=0.8, local_seconds=0.3)(
        x, generator=g(0)
    )
    assert [o.shape[-1] for o in outs] == [81, 81, 31, 31, 31]
    assert len(V.view_set("multi_view", num_views=3)) == 3
    with pytest.raises(ValueError, match="unknown view set"):
        V.view_set("three_view")
