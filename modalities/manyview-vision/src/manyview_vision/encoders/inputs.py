"""The input check shared by the image encoders."""

from __future__ import annotations

import torch
from torch import Tensor


def image_batch(x: object, in_chans: int, dtype: torch.dtype, who: str) -> Tensor:
    """Check an encoder's input and return it as ``(N, in_chans, H, W)`` in ``dtype``.

    Accepts float images and ``uint8`` images (divided by 255, as the views do); a 3-D
    batch ``(N, H, W)`` is taken as single-channel when ``in_chans == 1``. Anything else
    raises a ValueError that says what was expected.
    """
    if not isinstance(x, Tensor):
        raise ValueError(f"{who}: expects an image tensor (N, C, H, W), got {type(x).__name__}")
    if x.dim() == 3 and in_chans == 1:
        x = x.unsqueeze(1)
    if x.dim() != 4 or x.shape[1] != in_chans:
        raise ValueError(
            f"{who}: expects images (N, {in_chans}, H, W) (in_chans={in_chans}), got shape "
            f"{tuple(x.shape)}; set in_chans to the images' channel count"
        )
    if x.dtype == torch.uint8:
        return x.to(dtype).div_(255.0)
    if not x.is_floating_point():
        raise ValueError(f"{who}: expects float images (or uint8 in [0, 255]), got {x.dtype}")
    return x.to(dtype)
