"""The small CNN: tiny and one-channel images, its contract, bad input and options."""

from __future__ import annotations

import pytest
import torch

import manyview
from manyview.testing import check_encoder
from manyview_vision.encoders import SmallCNN


@pytest.mark.parametrize("side", [8, 16, 32, 3])
@pytest.mark.parametrize("in_chans", [1, 3])
def test_small_cnn_tiny_images(side, in_chans):
    enc = manyview.create("encoder", "small_cnn", in_chans=in_chans, output_dim=64, width=8)
    x = torch.rand(4, in_chans, side, side, requires_grad=True)
    out = enc(x)
    assert out.shape == (4, 64)
    out.sum().backward()
    assert x.grad is not None


def test_small_cnn_contract_and_errors():
    check_encoder(SmallCNN())
    assert SmallCNN(in_chans=1)(torch.rand(2, 8, 8)).shape == (2, 128)
    assert sum(p.numel() for p in SmallCNN().parameters()) < 400_000
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        SmallCNN()(torch.rand(2, 1, 8, 8))
    with pytest.raises(ValueError, match="output_dim"):
        SmallCNN(output_dim=0)
