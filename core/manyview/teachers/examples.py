"""Tiny constructor arguments for each built-in teacher, used by the contract tests."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def _mlp(seed: int = 0, trainable: bool = False) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    return net.requires_grad_(trainable)


class TwoInputNet(nn.Module):
    """A teacher over two inputs, ``image`` and ``text``, each (N, 8)."""

    def __init__(self) -> None:
        super().__init__()
        self.image = nn.Linear(8, 4)
        self.text = nn.Linear(8, 4)

    def forward(self, image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        return self.image(image) + self.text(text)

    def example_inputs(self, n: int) -> dict[str, torch.Tensor]:
        return {"image": torch.randn(n, 8), "text": torch.randn(n, 8), "audio": torch.randn(n, 8)}


def ema_kwargs() -> dict[str, Any]:
    return {"student": _mlp(trainable=True), "momentum": 0.9}


def frozen_kwargs() -> dict[str, Any]:
    return {"module": _mlp()}


def ensemble_kwargs() -> dict[str, Any]:
    return {"teachers": [_mlp(0), _mlp(1), _mlp(2)]}


def privileged_kwargs() -> dict[str, Any]:
    return {
        "module": TwoInputNet().requires_grad_(False),
        "teacher_keys": ("image", "text"),
        "student_keys": ("audio",),
    }


def self_kwargs() -> dict[str, Any]:
    return {"student": _mlp(trainable=True)}
