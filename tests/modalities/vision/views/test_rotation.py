"""The rotation view: M rotated copies of each image, contiguous per sample (SLA's input
transformations), its joint labels, and bad input."""

from __future__ import annotations

import pytest
import torch

import manyview
from manyview.distill.sla import joint_labels
from manyview.testing import check_view
from manyview_vision.views import Rotation


def test_rotation_gives_m_contiguous_copies_per_sample():
    x = torch.arange(2 * 1 * 3 * 3, dtype=torch.float32).reshape(2, 1, 3, 3)
    out = Rotation()(x)
    assert out.shape == (8, 1, 3, 3)
    for i in range(2):
        for j in range(4):
            assert torch.equal(out[i * 4 + j], torch.rot90(x[i], j, (1, 2)))
    assert torch.equal(out[0, 0], x[0, 0])  # copy 0 is the untransformed image
    # rot90 turns from the first image axis (H) towards the second (W), as SLA does
    assert out[1, 0].tolist() == [[2.0, 5.0, 8.0], [1.0, 4.0, 7.0], [0.0, 3.0, 6.0]]
    two = Rotation((0, 180))(torch.randn(3, 2, 4, 6))  # 180 degrees allows non-square
    assert two.shape == (6, 2, 4, 6)
    g = torch.Generator().manual_seed(0)
    assert torch.equal(Rotation()(x, generator=g), out)  # deterministic, generator unused
    assert Rotation().copies_per_input == 4 == Rotation().num_transforms
    assert Rotation().example_inputs(5).shape == (5, 3, 8, 8)
    assert isinstance(manyview.create("view", "rotation"), Rotation)


def test_rotation_bad_inputs():
    with pytest.raises(ValueError, match="square"):
        Rotation()(torch.randn(2, 3, 4, 6))
    for rotations, match in [((0, 45), "multiples of 90"), ((0, 360), "distinct"), ((), "empty")]:
        with pytest.raises(ValueError, match=match):
            Rotation(rotations)
    with pytest.raises(ValueError, match="images"):
        Rotation()(torch.randn(4, 4))


def test_registered_by_the_vision_plugin_and_passes_the_contract():
    entry = manyview.entry("view", "rotation")
    assert entry.plugin == "manyview-vision" and entry.modality == "image"
    check_view(manyview.create("view", "rotation"))


def test_copies_line_up_with_the_joint_labels():
    x = torch.rand(3, 1, 4, 4)
    y = torch.tensor([2, 0, 1])
    out, labels = Rotation()(x), joint_labels(y, 4)
    assert len(out) == len(labels) == 12
    for row in range(12):
        assert torch.equal(out[row], torch.rot90(x[row // 4], row % 4, (1, 2)))
        assert labels[row] == y[row // 4] * 4 + row % 4
