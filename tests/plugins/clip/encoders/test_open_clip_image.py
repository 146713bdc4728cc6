"""open_clip_image: preprocessing of image batches, shapes, contract, bad input."""

from __future__ import annotations

import pytest
import torch

import manyview
from manyview.testing import check_encoder
from manyview_clip import OpenCLIPImage
from manyview_text import build_clip


@pytest.fixture
def image_encoder():
    torch.manual_seed(0)
    return OpenCLIPImage().eval()


def test_contract_and_shapes(image_encoder):
    check_encoder(manyview.create("encoder", "open_clip_image"))
    assert manyview.entry("encoder", "open_clip_image").modality == "image"
    assert image_encoder.output_dim == 64 and image_encoder.image_size == (32, 32)
    assert image_encoder(torch.rand(3, 3, 32, 32)).shape == (3, 64)


def test_uint8_grayscale_and_other_sizes_are_preprocessed(image_encoder):
    gray = torch.randint(0, 256, (2, 8, 8), dtype=torch.uint8)
    as_float = gray.float() / 255
    rgb = as_float[:, None].expand(-1, 3, -1, -1)
    with torch.no_grad():
        a = image_encoder(gray)
        b = image_encoder(as_float[:, None])
        c = image_encoder(rgb)
    assert a.shape == (2, 64)
    assert torch.allclose(a, b, atol=1e-6) and torch.allclose(a, c, atol=1e-6)
    x = image_encoder.preprocess(torch.rand(2, 3, 64, 48))
    assert x.shape == (2, 3, 32, 32)
    white = image_encoder.preprocess(torch.ones(1, 3, 32, 32))
    want = ((1 - image_encoder.mean) / image_encoder.std).flatten()
    assert torch.allclose(white[0, :, 0, 0], want)


def test_image_size_and_normalize():
    enc = OpenCLIPImage(image_size=16, normalize=True)
    assert enc.image_size == (16, 16)
    out = enc(torch.rand(2, 3, 16, 16))
    assert torch.allclose(out.norm(dim=1), torch.ones(2), atol=1e-5)


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (torch.rand(2, 4, 8, 8), "1 or 3 channels"),
        (torch.rand(8, 8), r"\(N, C, H, W\)"),
        (torch.zeros(2, 3, 8, 8, dtype=torch.int64), "float or uint8"),
        ([1, 2], r"\(N, C, H, W\)"),
        (torch.rand(0, 3, 8, 8), r"\(N, C, H, W\)"),
    ],
)
def test_bad_input(image_encoder, bad, match):
    with pytest.raises(ValueError, match=match):
        image_encoder(bad)


def test_preprocess_false_takes_the_towers_input():
    clip = build_clip("tiny").eval()
    full = OpenCLIPImage.from_clip(clip)
    bare = OpenCLIPImage.from_clip(clip, preprocess=False)
    x = torch.rand(2, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(full(x), bare(full.preprocess(x)))
    with pytest.raises(ValueError, match="preprocess=False"):
        bare(torch.zeros(2, 3, 32, 32, dtype=torch.uint8))
