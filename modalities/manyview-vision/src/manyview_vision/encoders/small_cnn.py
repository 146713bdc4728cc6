"""A small convolutional encoder for tiny images (8 x 8 to 32 x 32), the CPU default."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from manyview.options import check_ints
from manyview_vision.encoders.inputs import image_batch


def _block(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]


class SmallCNN(nn.Module):
    """Three stages of two 3 x 3 convolutions (BatchNorm, ReLU), 2 x 2 max-pooling between
    stages, and global average pooling: (N, C, H, W) -> (N, output_dim).

    Channels are ``width``, ``2 * width`` and ``output_dim``; pooling rounds up, so any
    image of at least 1 x 1 pixels works (8 x 8 gives 4 x 4 then 2 x 2; 32 x 32 gives
    16 x 16 then 8 x 8). About 0.3 M parameters at the defaults.

    Args:
        in_chans: image channels (1 for grayscale digits).
        output_dim: feature size (``output_dim`` attribute).
        width: channels of the first stage.

    Inputs: images (N, in_chans, H, W) float (uint8 is divided by 255); (N, H, W) when
    ``in_chans`` is 1. Output: (N, output_dim).
    """

    def __init__(self, in_chans: int = 3, output_dim: int = 128, width: int = 32) -> None:
        super().__init__()
        check_ints("small_cnn", in_chans=in_chans, output_dim=output_dim, width=width)
        pool = nn.MaxPool2d(2, ceil_mode=True)
        self.features = nn.Sequential(
            *_block(in_chans, width),
            *_block(width, width),
            pool,
            *_block(width, 2 * width),
            *_block(2 * width, 2 * width),
            pool,
            *_block(2 * width, output_dim),
            *_block(output_dim, output_dim),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.in_chans, self.output_dim = in_chans, output_dim

    def forward(self, x: Tensor) -> Tensor:
        dtype = self.features[0].weight.dtype
        return self.features(image_batch(x, self.in_chans, dtype, "small_cnn"))

    def example_inputs(self, n: int = 2) -> Tensor:
        """``n`` random 16 x 16 images in [0, 1]."""
        return torch.rand(n, self.in_chans, 16, 16)
