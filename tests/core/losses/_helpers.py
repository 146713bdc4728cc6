"""Shared test data and assertions for the loss tests."""

from __future__ import annotations

import torch

RTOL = 1e-9
ATOL = 1e-10


def raw_views(n: int, m: int, d: int, seed: int, spread: float = 2.5) -> torch.Tensor:
    """Random float64 (N, M, D) embeddings with row norms spread over [0.5, 0.5 + spread]."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, m, d, generator=gen, dtype=torch.float64)
    norms = 0.5 + spread * torch.rand(n, m, 1, generator=gen, dtype=torch.float64)
    return x / x.norm(dim=-1, keepdim=True) * norms


def unit(x: torch.Tensor) -> torch.Tensor:
    """L2-normalise along the last axis (written here, not borrowed from the library)."""
    return x / x.norm(dim=-1, keepdim=True)


def assert_loss_close(
    value: object, expected: float, rtol: float = RTOL, atol: float = ATOL
) -> None:
    """``value`` is a 0-dim float64 tensor equal to ``expected`` within the tolerances."""
    assert isinstance(value, torch.Tensor), f"expected a tensor, got {type(value).__name__}"
    assert value.dim() == 0, f"expected a 0-dim tensor, got shape {tuple(value.shape)}"
    assert value.dtype == torch.float64, f"float64 input gave a {value.dtype} loss"
    target = torch.tensor(expected, dtype=torch.float64)
    assert torch.allclose(value.detach(), target, rtol=rtol, atol=atol), (
        f"got {value.item()!r}, expected {expected!r} (diff {value.item() - expected:.3e})"
    )


def assert_scalar_close(
    value: object, expected: float, rtol: float = RTOL, atol: float = ATOL
) -> None:
    """``value`` (a float or a one-element tensor) equals ``expected`` within the tolerances."""
    got = float(value.detach()) if isinstance(value, torch.Tensor) else float(value)  # type: ignore[arg-type]
    assert abs(got - expected) <= atol + rtol * abs(expected), (
        f"got {got!r}, expected {expected!r} (diff {got - expected:.3e})"
    )
