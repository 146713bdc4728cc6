"""Building a registered thing from its example arguments, and the built-in teachers' tiny
example constructor arguments.

A registration may give ``example_kwargs=``: a dict, a callable returning one, or a
``"module:function"`` string naming such a callable (for arguments such as a student
module, which cannot be written as a literal). :func:`build` creates the thing with them;
the built-in teachers name the ``*_kwargs`` functions below.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

import manyview
from manyview.registry import Entry

__all__ = [
    "TEST_CONTEXT",
    "TwoInputNet",
    "build",
    "ema_kwargs",
    "ensemble_kwargs",
    "frozen_kwargs",
    "privileged_kwargs",
    "self_kwargs",
]


TEST_CONTEXT = {"dataset_size": 64, "embed_dim": 16, "input_dim": 8, "steps": 10}
"""The context :func:`build` gives factories' ``from_context`` arguments (a small dataset,
16-dimensional embeddings), as a recipe would (:mod:`manyview.context`)."""


def build(kind: str, name: str, /, **kwargs: Any) -> Any:
    """Create ``name`` as a recipe would in a test: the registration's ``example_kwargs``
    (if any) and :data:`TEST_CONTEXT` for the factory's ``from_context`` arguments,
    overridden by ``kwargs``.

    ``example_kwargs`` is a dict, a callable returning one, or a ``"module:function"`` string
    naming such a callable (for arguments such as a student module)."""
    from manyview.context import context_arguments

    entry = manyview.entry(kind, name)
    example = entry.meta.get("example_kwargs", {})
    if isinstance(example, str):  # "module:function" returning the kwargs (e.g. a module)
        example = Entry(kind, name, example, entry.plugin).load()
    if callable(example):
        example = example()
    options = {**example, **kwargs}
    filled = context_arguments(entry.load(), options, TEST_CONTEXT)
    return manyview.create(kind, name, **{**filled, **options})


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
    return {"student": _mlp(trainable=True), "momentum": 0.9, "key": "x"}


def frozen_kwargs() -> dict[str, Any]:
    return {"module": _mlp(), "key": "x"}


def ensemble_kwargs() -> dict[str, Any]:
    return {"teachers": [_mlp(0), _mlp(1), _mlp(2)]}


def privileged_kwargs() -> dict[str, Any]:
    return {
        "module": TwoInputNet().requires_grad_(False),
        "teacher_keys": ("image", "text"),
        "student_keys": ("audio",),
    }


def self_kwargs() -> dict[str, Any]:
    return {"student": _mlp(trainable=True), "key": "x"}
