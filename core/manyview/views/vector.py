"""Views of vector inputs: Gaussian noise and random feature masking, batched and seeded."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from manyview.views.checks import check_view_call


def _check(x: Tensor, who: str) -> None:
    if not isinstance(x, Tensor) or not x.is_floating_point() or x.dim() != 2:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{who}: expects a float batch (N, D), got {shape}")


class GaussianNoise(nn.Module):
    """Add N(0, std²) noise to every feature.

    Args:
        std: the noise's standard deviation.
    """

    def __init__(self, std: float = 0.1) -> None:
        super().__init__()
        if not std >= 0:
            raise ValueError(f"gaussian_noise: std must be >= 0, got {std}")
        self.std = float(std)

    def forward(self, x: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        check_view_call(x, generator, "gaussian_noise")
        _check(x, "gaussian_noise")
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        return x + self.std * noise

    def example_inputs(self, n: int = 4, *, generator: torch.Generator | None = None) -> Tensor:
        return torch.randn(n, 16, generator=generator)


class FeatureMask(nn.Module):
    """Zero each feature independently with probability ``p`` (per sample).

    Args:
        p: the masking probability.
    """

    def __init__(self, p: float = 0.2) -> None:
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"feature_mask: p must lie in [0, 1), got {p}")
        self.p = float(p)

    def forward(self, x: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        check_view_call(x, generator, "feature_mask")
        _check(x, "feature_mask")
        keep = torch.rand(x.shape, generator=generator, device=x.device) >= self.p
        return x * keep.to(x.dtype)

    def example_inputs(self, n: int = 4, *, generator: torch.Generator | None = None) -> Tensor:
        return torch.randn(n, 16, generator=generator)
