"""The teacher contract: make targets for a batch without gradients, and maybe update.

A teacher is an ``nn.Module``. Calling it on a batch returns targets computed under
``torch.no_grad()``; ``update(student, step)`` is called by the trainer after every optimizer
step (a no-op for teachers that never change); ``state_dict``/``load_state_dict`` hold all of
its state. Its parameters never require grad.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn


def trainable_parameter_names(module: nn.Module, limit: int = 3) -> list[str]:
    return [name for name, p in module.named_parameters() if p.requires_grad][:limit]


class Teacher(nn.Module):
    """Base class of teachers. Subclasses implement :meth:`targets`."""

    def forward(self, batch: Any, **kwargs: Any) -> Any:
        with torch.no_grad():
            return self.targets(batch, **kwargs)

    def targets(self, batch: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def update(self, student: nn.Module | None = None, step: int | None = None) -> None:
        """Called after each optimizer step; the default does nothing."""

    def train(self, mode: bool = True) -> Teacher:
        # Teachers stay in eval mode (dropout off, batch-norm statistics frozen).
        return super().train(False)

    def example_inputs(self, n: int = 4, *, generator: torch.Generator | None = None) -> Any:
        """A batch this teacher accepts (for the contract tests)."""
        module = getattr(self, "module", None)
        if module is not None and hasattr(module, "example_inputs"):
            return module.example_inputs(n)
        return torch.randn(n, 8, generator=generator)


def call_module(module: nn.Module, batch: Any) -> Tensor:
    """Call ``module`` on a tensor, a tuple (as positional args) or a dict (as keywords)."""
    if isinstance(batch, dict):
        return module(**batch)
    if isinstance(batch, tuple):
        return module(*batch)
    return module(batch)
