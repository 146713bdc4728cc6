"""Contract checks of encoders: ``output_dim``, example inputs, finite features, gradients."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from manyview.testing.examples import build

__all__ = ["EncoderContractTests", "check_encoder"]


def check_encoder(encoder: Any, n: int = 2) -> None:
    """An encoder reports ``output_dim``, makes ``example_inputs(n)`` and maps them to
    finite features (n, output_dim) that carry gradients to its parameters."""
    dim = getattr(encoder, "output_dim", None)
    assert isinstance(dim, int) and dim > 0, f"output_dim must be a positive int, got {dim!r}"
    assert hasattr(encoder, "example_inputs"), "an encoder must provide example_inputs(n)"
    x = encoder.example_inputs(n)
    out = encoder(x)
    assert isinstance(out, Tensor), f"an encoder must return a tensor, got {type(out).__name__}"
    assert tuple(out.shape) == (n, dim), f"expected features ({n}, {dim}), got {tuple(out.shape)}"
    assert torch.isfinite(out).all(), "non-finite features"
    params = [p for p in encoder.parameters() if p.requires_grad]
    if params:
        out.float().sum().backward()
        assert any(p.grad is not None for p in params), "no gradient reached the parameters"


class EncoderContractTests:
    """pytest mixin: set ``name`` (a registered encoder) and optionally ``kwargs``."""

    name: str = ""
    kwargs: dict[str, Any] = {}  # noqa: RUF012

    def test_encoder_contract(self) -> None:
        check_encoder(build("encoder", self.name, **self.kwargs))
