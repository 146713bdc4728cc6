"""What the speech views share: seeded per-sample draws on the generator's device, the
waveform views' base class and test signals."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from manyview.options import check_int

__all__ = [
    "WaveView",
    "apply_p",
    "example_waveforms",
    "gen_device",
    "rand",
    "randint",
    "randn",
    "shifted",
]


def gen_device(generator: torch.Generator | None, device: torch.device) -> torch.device:
    """Where draws happen: the generator's device, else ``device``."""
    return generator.device if generator is not None else device


def rand(n: Any, generator: torch.Generator | None, device: torch.device) -> Tensor:
    """Uniform [0, 1) of shape ``n``, drawn on the generator's device, returned on ``device``."""
    shape = (n,) if isinstance(n, int) else tuple(n)
    return torch.rand(shape, generator=generator, device=gen_device(generator, device)).to(device)


def randn(shape: Sequence[int], generator: torch.Generator | None, device: torch.device) -> Tensor:
    """Standard normal of ``shape``, drawn on the generator's device, returned on ``device``."""
    return torch.randn(tuple(shape), generator=generator, device=gen_device(generator, device)).to(
        device
    )


def randint(
    low: Tensor | int,
    high: Tensor | int,
    n: Any,
    generator: torch.Generator | None,
    device: torch.device,
) -> Tensor:
    """Integers uniform in [low, high] (inclusive; tensors broadcast), shape ``n``."""
    u = rand(n, generator, device)
    low_t = torch.as_tensor(low, device=device)
    span = torch.as_tensor(high, device=device) - low_t + 1
    return (low_t + (u * span).floor().long()).minimum(low_t + span - 1)


def apply_p(x: Tensor, y: Tensor, p: float, generator: torch.Generator | None) -> Tensor:
    """Per row: ``y`` with probability ``p``, else ``x``."""
    if p >= 1:
        return y
    keep = rand(x.shape[0], generator, x.device) < p
    return torch.where(keep.view(-1, *([1] * (x.dim() - 1))), y, x)


def shifted(x: Tensor, shift: Tensor, length: int, circular: bool = False) -> Tensor:
    """``out[i, j] = x[i, j + shift[i]]`` for j < length; zero outside x (or wrapped)."""
    t = x.shape[1]
    idx = torch.arange(length, device=x.device)[None, :] + shift[:, None]
    if circular:
        return x.gather(1, idx.remainder(t))
    valid = (idx >= 0) & (idx < t)
    return x.gather(1, idx.clamp(0, t - 1)) * valid.to(x.dtype)


def example_waveforms(
    n: int = 4,
    seconds: float = 1.0,
    sample_rate: int = 16000,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    """``(n, samples)`` test signals: a tone of a random pitch (100..1000 Hz) with a
    harmonic, a 3..6 Hz syllable envelope and a little noise, peak about 0.5."""
    samples = max(1, round(seconds * sample_rate))
    t = torch.arange(samples) / sample_rate
    f0 = 100 + 900 * torch.rand(n, 1, generator=generator)
    rate = 3 + 3 * torch.rand(n, 1, generator=generator)
    phase = 2 * math.pi * torch.rand(n, 1, generator=generator)
    voice = torch.sin(2 * math.pi * f0 * t + phase) + 0.4 * torch.sin(4 * math.pi * f0 * t)
    envelope = 0.5 - 0.5 * torch.cos(2 * math.pi * rate * t)
    noise = 0.01 * torch.randn(n, samples, generator=generator)
    return (0.35 * voice * envelope + noise).float()


class WaveformExamples:
    """Example inputs of a view that takes waveforms: ``n`` one-second test signals at its
    ``sample_rate``."""

    sample_rate: int

    def example_inputs(self, n: int = 4, *, generator: torch.Generator | None = None) -> Tensor:
        return example_waveforms(n, 1.0, self.sample_rate, generator=generator)


class WaveView(WaveformExamples, nn.Module):
    """Base of the waveform views: input check and example inputs."""

    name = "audio view"

    def __init__(self, sample_rate: int = 16000) -> None:
        super().__init__()
        self.sample_rate = check_int(sample_rate, "sample_rate", self.name)
