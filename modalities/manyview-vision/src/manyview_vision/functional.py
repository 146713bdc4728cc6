"""Batched image operations with per-sample parameters, following torchvision's definitions.

Every operation takes a float batch ``(N, C, H, W)`` with values in ``[0, 1]`` and a tensor
of parameters with one row per sample, and returns a new tensor: the input is never changed,
except by brightness, contrast and saturation called with ``inplace=True``.
Nothing here draws random numbers: :mod:`manyview_vision.sampling` draws the parameters and
the views in :mod:`manyview_vision.views` put the two together.

The colour operations match ``torchvision.transforms.v2.functional`` on float images
(``adjust_brightness``, ``adjust_contrast``, ``adjust_saturation``, ``adjust_hue``,
``rgb_to_grayscale``, ``solarize``, ``gaussian_blur``) for each sample's own parameter.
:func:`resized_crop` matches ``resized_crop(..., antialias=False)`` with bilinear
interpolation; torchvision's default ``antialias=True`` differs from it only where a crop is
shrunk (a crop larger than the output size).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "adjust_brightness",
    "adjust_contrast",
    "adjust_hue",
    "adjust_saturation",
    "blur_matrices",
    "check_images",
    "gaussian_blur",
    "gaussian_kernels",
    "grayscale",
    "normalize",
    "resized_crop",
    "row_blocks",
    "solarize",
    "to_float_images",
    "update_rows",
]

# ITU-R 601-2 luma, as torchvision's rgb_to_grayscale.
_LUMA = (0.2989, 0.587, 0.114)


BLOCK_ELEMENTS = 1 << 19
"""On the CPU, batches are processed in blocks of about this many values (2 MB of float32:
three 224 x 224 RGB images, 170 of 32 x 32), so that the temporaries of a chain of
operations stay in a core's cache instead of passing through memory for the whole batch
(docs/benchmarks.md, "Batched image views", times the difference). The loop runs over
blocks, never per sample; on a GPU the whole batch is one block."""


def check_images(x: Any, who: str) -> Tensor:
    """Check an image batch and return it as ``(N, C, H, W)`` without converting it.

    ``(N, H, W)`` is read as single-channel images ``(N, 1, H, W)``. The dtype must be
    floating (values in [0, 1]) or ``uint8`` (values in [0, 255]); anything else, or any
    other number of axes, raises a ValueError naming ``who``.
    """
    if not isinstance(x, Tensor):
        raise ValueError(f"{who}: expects an image tensor (N, C, H, W), got {type(x).__name__}")
    if x.dim() == 3:
        x = x.unsqueeze(1)
    if x.dim() != 4:
        raise ValueError(
            f"{who}: expects images (N, C, H, W) or single-channel (N, H, W), "
            f"got shape {tuple(x.shape)}"
        )
    if min(x.shape[1:]) < 1:
        raise ValueError(
            f"{who}: images need at least one channel and one pixel, got {tuple(x.shape)}"
        )
    if x.dtype != torch.uint8 and not x.is_floating_point():
        raise ValueError(
            f"{who}: expects float images in [0, 1] or uint8 images in [0, 255], got {x.dtype}"
        )
    return x


def to_float_images(x: Any, who: str) -> Tensor:
    """:func:`check_images`, then ``uint8`` divided by 255 into float32 (float images are
    returned as they are: their values are assumed to lie in [0, 1])."""
    x = check_images(x, who)
    return x.to(torch.float32).div_(255.0) if x.dtype == torch.uint8 else x


def row_blocks(n: int, per_row: int, device: torch.device) -> list[slice]:
    """Slices of ``range(n)`` with about :data:`BLOCK_ELEMENTS` values each on the CPU
    (``per_row`` values per row); one slice elsewhere."""
    if device.type != "cpu" or n == 0:
        return [slice(0, n)]
    step = max(1, BLOCK_ELEMENTS // max(1, per_row))
    return [slice(i, min(i + step, n)) for i in range(0, n, step)]


def update_rows(x: Tensor, rows: Tensor, fn: Callable[[Tensor, Tensor], Tensor]) -> Tensor:
    """Replace ``x[rows]`` by ``fn(x[rows], rows)`` in place, block by block; return ``x``."""
    per_row = x[0].numel() if len(x) else 1
    for part in row_blocks(len(rows), per_row, x.device):
        r = rows[part]
        x.index_copy_(0, r, fn(x.index_select(0, r), r))
    return x


def _rows(value: Tensor, x: Tensor) -> Tensor:
    """Per-sample values (N,) as (N, 1, 1, 1) in ``x``'s dtype and device."""
    return value.to(device=x.device, dtype=x.dtype).reshape(-1, 1, 1, 1)


def _luma(x: Tensor) -> Tensor:
    """(N, 1, H, W) grayscale of RGB images; a one-channel batch is returned itself."""
    if x.shape[1] == 1:
        return x
    r, g, b = x.unbind(1)
    return r.mul(_LUMA[0]).add_(g, alpha=_LUMA[1]).add_(b, alpha=_LUMA[2]).unsqueeze(1)


def resized_crop(
    x: Tensor,
    top: Tensor,
    left: Tensor,
    height: Tensor,
    width: Tensor,
    size: tuple[int, int],
    flip: Tensor | None = None,
) -> Tensor:
    """Crop each image to its own box and resize it to ``size`` in one ``grid_sample`` call.

    Args:
        x: images (N, C, H, W).
        top, left, height, width: the boxes in pixels, integer tensors (N,); box n covers
            rows ``top[n] .. top[n] + height[n] - 1`` and the matching columns.
        size: the output (height, width).
        flip: optional bool (N,): mirror those crops left to right (a horizontal flip,
            fused into the same sampling grid).

    Returns:
        (N, C, size[0], size[1]): bilinear, with torchvision's half-pixel centres and edge
        clamping inside each box (``resized_crop(..., antialias=False)``).
    """
    n, _, h, w = x.shape
    out_h, out_w = size
    opts = {"device": x.device, "dtype": x.dtype if x.dtype == torch.float64 else torch.float32}
    top, left = top.to(**opts)[:, None], left.to(**opts)[:, None]
    height, width = height.to(**opts)[:, None], width.to(**opts)[:, None]
    u = (torch.arange(out_w, **opts) + 0.5) / out_w  # (out_w,) output pixel centres in [0, 1]
    v = (torch.arange(out_h, **opts) + 0.5) / out_h
    if flip is not None:
        u = torch.where(flip.to(x.device)[:, None], 1.0 - u, u)  # (N, out_w)
    # Source pixel coordinates (pixel centres at integers), clamped inside the box.
    xs = torch.minimum((u * width - 0.5).clamp_min(0.0), width - 1.0) + left
    ys = torch.minimum((v * height - 0.5).clamp_min(0.0), height - 1.0) + top
    gx = (2.0 * xs + 1.0) / w - 1.0  # grid_sample's normalised coordinates, align_corners=False
    gy = (2.0 * ys + 1.0) / h - 1.0
    grid = torch.stack(
        (gx[:, None, :].expand(n, out_h, out_w), gy[:, :, None].expand(n, out_h, out_w)), dim=-1
    )
    out = F.grid_sample(
        x, grid.to(x.dtype), mode="bilinear", padding_mode="border", align_corners=False
    )
    return out


def adjust_brightness(x: Tensor, factor: Tensor, *, inplace: bool = False) -> Tensor:
    """``x * factor`` clamped to [0, 1] (torchvision ``adjust_brightness``)."""
    out = x.mul_(_rows(factor, x)) if inplace else x * _rows(factor, x)
    return out.clamp_(0.0, 1.0)


def adjust_contrast(x: Tensor, factor: Tensor, *, inplace: bool = False) -> Tensor:
    """Blend each image with the mean of its grayscale (torchvision ``adjust_contrast``)."""
    f = _rows(factor, x)
    if x.shape[1] == 3:  # mean of the luma = luma of the channel means
        m = x.mean(dim=(2, 3))
        mean = (m[:, 0] * _LUMA[0] + m[:, 1] * _LUMA[1] + m[:, 2] * _LUMA[2]).reshape(-1, 1, 1, 1)
    else:
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
    offset = mean * (1.0 - f)
    out = x.mul_(f).add_(offset) if inplace else torch.addcmul(offset, x, f)
    return out.clamp_(0.0, 1.0)


def adjust_saturation(x: Tensor, factor: Tensor, *, inplace: bool = False) -> Tensor:
    """Blend each RGB image with its grayscale (torchvision ``adjust_saturation``); a
    one-channel image is returned unchanged, as PIL and torchvision do."""
    if x.shape[1] == 1:
        return x if inplace else x.clone()
    f = _rows(factor, x)
    gray = _luma(x).mul_(1.0 - f)
    out = x.mul_(f).add_(gray) if inplace else torch.addcmul(gray, x, f)
    return out.clamp_(0.0, 1.0)


def adjust_hue(x: Tensor, factor: Tensor) -> Tensor:
    """Shift each RGB image's hue by its factor in [-0.5, 0.5] turns, through HSV as
    torchvision's ``adjust_hue``; a one-channel image is returned unchanged.

    The hue is torchvision's (``_rgb_to_hsv``, including which channel wins a tie for the
    maximum), in sextants; the way back is the closed form of HSV -> RGB: channel k of
    (R, G, B) is ``max - chroma * clamp(min(n, 4 - n), 0, 1)`` with ``n = (k + 6 h) mod 6``
    for k = 5, 3, 1 and ``chroma = max - min``. It equals torchvision's sector table up to
    float rounding, with arithmetic only (no comparisons, ``where`` or gathers, which are
    slow on the CPU)."""
    if x.shape[1] == 1:
        return x.clone()
    r, g, b = x.unbind(1)
    maxc = torch.maximum(torch.maximum(r, g), b)
    chroma = maxc - torch.minimum(torch.minimum(r, g), b)
    big = torch.finfo(x.dtype).max
    not_r = torch.sub(maxc, r).mul_(big).clamp_(0.0, 1.0)  # 0 where r is the maximum, else 1
    not_g = torch.sub(maxc, g).mul_(big).clamp_(0.0, 1.0)
    hue_b = torch.sub(r, g).add_(chroma, alpha=4.0)  # max is b: 4 + (r - g) / chroma
    hue_g = torch.sub(b, r).add_(chroma, alpha=2.0)  # max is g: 2 + (b - r) / chroma
    hue_r = torch.sub(g, b)  # max is r: (g - b) / chroma
    h6 = hue_b.sub_(hue_g).mul_(not_g).add_(hue_g)  # g's formula where g is the maximum
    h6 = h6.sub_(hue_r).mul_(not_r).add_(hue_r)  # r's formula where r is (first tie rule)
    h6.div_(chroma.clamp_min(1e-30))  # gray pixels: 0 / tiny = 0
    h6.add_(factor.to(device=x.device, dtype=x.dtype).reshape(-1, 1, 1), alpha=6.0)
    k = torch.tensor([5.0, 3.0, 1.0], device=x.device, dtype=x.dtype).reshape(1, 3, 1, 1)
    n = torch.add(h6.unsqueeze(1), k)  # in [-4, 14)
    n.sub_(torch.div(n, 6.0).floor_().mul_(6.0))  # mod 6 (floor is faster than remainder)
    ramp = torch.minimum(n, torch.rsub(n, 4.0), out=n).clamp_(0.0, 1.0)
    return torch.addcmul(maxc.unsqueeze(1), chroma.unsqueeze(1), ramp, value=-1.0)


def grayscale(x: Tensor) -> Tensor:
    """The grayscale of each image, repeated over its channels (torchvision
    ``rgb_to_grayscale(x, num_output_channels=C)``)."""
    return _luma(x).expand_as(x).clone()


def solarize(x: Tensor, threshold: float | Tensor) -> Tensor:
    """``1 - x`` where ``x >= threshold`` (torchvision ``solarize`` on float images)."""
    if isinstance(threshold, Tensor):
        threshold = _rows(threshold, x)
    return torch.where(x >= threshold, 1.0 - x, x)


def gaussian_kernels(sigma: Tensor, kernel_size: int, dtype: torch.dtype) -> Tensor:
    """(N, kernel_size) one-dimensional Gaussian kernels, one per sigma, each summing to 1
    (torchvision's ``_get_gaussian_kernel1d``, with weights below 1e-12 set to 0)."""
    lim = (kernel_size - 1) / (2.0 * math.sqrt(2.0))
    t = torch.linspace(-lim, lim, kernel_size, dtype=dtype, device=sigma.device)
    kernels = torch.softmax(-((t[None, :] / sigma.to(dtype)[:, None]) ** 2), dim=1)
    # Weights below 1e-12 change no float32 output, but denormal ones (a small sigma, a
    # long kernel) would slow every multiply by them several times over: drop them.
    return kernels.masked_fill_(kernels < 1e-12, 0.0)


def _reflect(index: Tensor, length: int) -> Tensor:
    """Map any integer positions into [0, length) by mirroring at the edges without
    repeating them (``F.pad(..., mode="reflect")``, extended to any distance)."""
    if length == 1:
        return torch.zeros_like(index)
    period = 2 * (length - 1)
    index = index.remainder(period)
    return torch.where(index >= length, period - index, index)


def blur_matrices(kernels: Tensor, length: int) -> Tensor:
    """(N, L, L) matrices that convolve a length-L signal with each kernel (N, k), reflect
    padding included: ``signal @ M.mT`` blurs along the last axis."""
    n, k = kernels.shape
    taps = torch.arange(k, device=kernels.device) - k // 2
    src = _reflect(torch.arange(length, device=kernels.device)[:, None] + taps[None, :], length)
    out = kernels.new_zeros(n, length, length)
    return out.scatter_add_(2, src.expand(n, length, k), kernels[:, None, :].expand(n, length, k))


MATMUL_BLUR_MAX_SIDE = 256
"""Up to this image side, :func:`gaussian_blur` multiplies by dense (L, L) blur matrices
(fast BLAS, any kernel size on any image); above it, it runs grouped convolutions."""


def gaussian_blur(x: Tensor, sigma: Tensor, kernel_size: int) -> Tensor:
    """Blur each image with its own Gaussian (sigma per sample, the same in both axes).

    Separable, with reflect padding, as torchvision's ``gaussian_blur``. Images up to
    :data:`MATMUL_BLUR_MAX_SIDE` pixels a side are blurred by two batched matrix products
    with per-sample (L, L) blur matrices; larger ones by two grouped convolutions with one
    kernel per (sample, channel) group. A kernel larger than the image is fine: reflection
    repeats as far as needed.

    Args:
        x: images (N, C, H, W).
        sigma: (N,) positive standard deviations in pixels.
        kernel_size: odd kernel size.
    """
    n, c, h, w = x.shape
    if n == 0:
        return x.clone()
    kernels = gaussian_kernels(sigma.to(x.device), kernel_size, x.dtype)
    if max(h, w) <= MATMUL_BLUR_MAX_SIDE or kernel_size // 2 >= min(h, w):
        mw = blur_matrices(kernels, w)
        mh = mw if h == w else blur_matrices(kernels, h)
        y = torch.matmul(x.reshape(n, c * h, w), mw.transpose(1, 2))  # along W
        return torch.matmul(mh.unsqueeze(1), y.reshape(n, c, h, w))  # along H
    pad = kernel_size // 2
    kernels = kernels.repeat_interleave(c, dim=0)  # (N*C, k): one per sample and channel
    y = F.pad(x.reshape(1, n * c, h, w), (pad, pad, pad, pad), mode="reflect")
    y = F.conv2d(y, kernels[:, None, :, None], groups=n * c)  # along H
    y = F.conv2d(y, kernels[:, None, None, :], groups=n * c)  # along W
    return y.reshape(n, c, h, w)


def normalize(x: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """``(x - mean) / std`` per channel; ``mean`` and ``std`` are (C,)."""
    mean = mean.to(device=x.device, dtype=x.dtype).reshape(1, -1, 1, 1)
    std = std.to(device=x.device, dtype=x.dtype).reshape(1, -1, 1, 1)
    return (x - mean) / std
