"""A multi-layer perceptron encoder for vector inputs (tabular features, precomputed
embeddings, the synthetic dataset)."""

from __future__ import annotations

import itertools
from typing import ClassVar

import torch
from torch import Tensor, nn

from manyview.options import check_ints


class MLPEncoder(nn.Module):
    """Linear layers with GELU and LayerNorm between them, from (N, input_dim) to
    (N, output_dim).

    Args:
        input_dim: size of the input vectors.
        output_dim: feature size (``output_dim`` attribute).
        hidden_dim: width of the hidden layers.
        layers: number of linear layers (>= 1).
        dropout: dropout after each hidden layer.

    ``input_dim`` is read from the data when a recipe builds it (``from_context``).
    """

    from_context: ClassVar[dict[str, str]] = {"input_dim": "input_dim"}

    def __init__(
        self,
        input_dim: int = 16,
        output_dim: int = 64,
        hidden_dim: int = 128,
        layers: int = 2,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        check_ints(
            "mlp", input_dim=input_dim, output_dim=output_dim, hidden_dim=hidden_dim, layers=layers
        )
        dims = [input_dim] + [hidden_dim] * (layers - 1) + [output_dim]
        blocks: list[nn.Module] = []
        for i, (a, b) in enumerate(itertools.pairwise(dims)):
            blocks.append(nn.Linear(a, b))
            if i < layers - 1:
                blocks += [nn.LayerNorm(b), nn.GELU()]
                if dropout:
                    blocks.append(nn.Dropout(dropout))
        self.net = nn.Sequential(*blocks)
        self.input_dim, self.output_dim = input_dim, output_dim

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] != self.input_dim:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"mlp: expects inputs (N, {self.input_dim}), got {shape}")
        return self.net(x.to(self.net[0].weight.dtype))

    def example_inputs(self, n: int = 2) -> Tensor:
        return torch.randn(n, self.input_dim)
