"""Per-sample random parameters of the image views, drawn from a ``torch.Generator``.

Every function draws a fixed number of values for a batch of ``n`` in a fixed order, on the
generator's device (a CPU generator for CPU or GPU images alike), and returns them on
``device``. The distributions are torchvision's (``transforms.v2``), drawn once per sample
instead of once per call.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "bernoulli",
    "permutations",
    "resized_crop_boxes",
    "uniform",
]


def _rand(shape: tuple[int, ...], generator: torch.Generator | None) -> Tensor:
    where = generator.device if generator is not None else "cpu"
    return torch.rand(shape, generator=generator, device=where, dtype=torch.float64)


def uniform(
    n: int,
    low: float,
    high: float,
    generator: torch.Generator | None,
    device: torch.device | str = "cpu",
) -> Tensor:
    """(n,) float32 values uniform in [low, high)."""
    return (low + (high - low) * _rand((n,), generator)).to(device=device, dtype=torch.float32)


def bernoulli(
    n: int, p: float, generator: torch.Generator | None, device: torch.device | str = "cpu"
) -> Tensor:
    """(n,) bools, each true with probability ``p`` (``torch.rand(1) < p``, as torchvision's
    ``RandomApply`` and ``RandomHorizontalFlip``)."""
    return (_rand((n,), generator) < p).to(device)


def permutations(
    n: int, k: int, generator: torch.Generator | None, device: torch.device | str = "cpu"
) -> Tensor:
    """(n, k) int64: an independent uniformly random permutation of ``range(k)`` per row."""
    return _rand((n, k), generator).argsort(dim=1).to(device)


def resized_crop_boxes(
    n: int,
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    generator: torch.Generator | None,
    device: torch.device | str = "cpu",
    tries: int = 10,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Boxes (top, left, box height, box width), each (n,) int64, drawn as torchvision's
    ``RandomResizedCrop.make_params`` draws one box.

    Per sample: up to ``tries`` candidates with area fraction ``s ~ U(scale)`` and aspect
    ratio ``exp(U(log ratio))``; box width ``round(sqrt(s·H·W·r))`` and height
    ``round(sqrt(s·H·W/r))``; the first candidate that fits is placed uniformly at random.
    A sample whose candidates all fail gets torchvision's fallback: the largest centred
    box with aspect ratio clamped into ``ratio``. All tries of all samples are drawn at
    once.
    """
    area = float(height * width)
    s = scale[0] + (scale[1] - scale[0]) * _rand((n, tries), generator)
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    aspect = torch.exp(log_lo + (log_hi - log_lo) * _rand((n, tries), generator))
    place = _rand((n, 2), generator)
    target = area * s
    w = torch.round(torch.sqrt(target * aspect))
    h = torch.round(torch.sqrt(target / aspect))
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = fits.to(torch.int8).argmax(dim=1, keepdim=True)  # the first try that fits
    ok = fits.any(dim=1)
    w = w.gather(1, first).squeeze(1)
    h = h.gather(1, first).squeeze(1)
    # Fallback: a centred crop, the whole image with its ratio clamped into `ratio`.
    in_ratio = width / height
    if in_ratio < min(ratio):
        fw, fh = width, round(width / min(ratio))
    elif in_ratio > max(ratio):
        fw, fh = round(height * max(ratio)), height
    else:
        fw, fh = width, height
    w = torch.where(ok, w, torch.full_like(w, fw))
    h = torch.where(ok, h, torch.full_like(h, fh))
    top = torch.floor(place[:, 0] * (height - h + 1))
    left = torch.floor(place[:, 1] * (width - w + 1))
    top = torch.where(ok, top, torch.full_like(top, (height - fh) // 2))
    left = torch.where(ok, left, torch.full_like(left, (width - fw) // 2))
    return tuple(t.to(device=device, dtype=torch.int64) for t in (top, left, h, w))  # type: ignore[return-value]
