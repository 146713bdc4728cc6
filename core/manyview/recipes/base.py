"""What a recipe gives the trainer: modules to train, an optional teacher, and a step.

A recipe is registered through ``manyview_register_recipes``; its factory takes the
validated configuration (a dict, see :mod:`manyview.config`) and the training dataset and
returns a :class:`Recipe`.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

import manyview
from manyview.config import ConfigError


@dataclass
class StepOutput:
    """One training step's result.

    Attributes:
        loss: the weighted total, a 0-dim tensor with gradients.
        components: each loss term's (unweighted) value, for the logs: detached 0-dim
            tensors (or floats); the trainer reads them only at logging steps, so a step
            forces no device synchronisation for them.
        embeddings: ``(N, M, D)`` detached embeddings for the diagnostics, or ``None``.
    """

    loss: Tensor
    components: dict[str, Tensor | float] = field(default_factory=dict)
    embeddings: Tensor | None = None


class Recipe(nn.Module):
    """Base class of recipes: ``model`` (trained, checkpointed as ``model.safetensors``),
    ``losses`` (their parameters are trained and their buffers checkpointed too), and
    ``teacher`` (updated after every optimizer step)."""

    teacher: nn.Module | None

    def __init__(self) -> None:
        super().__init__()
        self.teacher = None

    def step(self, batch: Mapping[str, Any], generator: torch.Generator) -> StepOutput:
        raise NotImplementedError

    def compile_model(self) -> None:
        """``torch.compile`` the model's computing modules in place: the outermost modules
        that define ``forward`` (a ``ModuleDict`` of encoders is entered, each encoder is
        compiled whole). The step's Python-side checks stay eager."""

        def visit(module: nn.Module) -> None:
            if type(module).forward is not nn.Module.forward:
                module.compile()
                return
            for child in module.children():
                visit(child)

        visit(self.model)

    def trainable(self) -> list[nn.Parameter]:
        """Parameters the optimizer updates (the model's and the losses')."""
        params = [p for p in self.model.parameters() if p.requires_grad]
        params += [p for p in self.losses.parameters() if p.requires_grad]
        return params


def make_loss(spec: Mapping[str, Any], where: str) -> nn.Module:
    """Create one ``[[losses]]`` entry, turning any problem into a one-line ConfigError."""
    try:
        return manyview.create("loss", spec["name"], **spec["options"])
    except (LookupError, TypeError, ValueError) as exc:
        raise ConfigError(f"{where} ({spec['name']}): {exc}") from None


def loss_inputs(entry: manyview.Entry, loss: nn.Module, batch: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword inputs a loss takes from the batch: ``labels`` for supervised losses,
    ``index`` for losses with per-sample state."""
    kwargs: dict[str, Any] = {}
    needs = set(getattr(loss, "needs", ())) | set(entry.meta.get("needs", ()))
    if ("labels" in needs or "labels" in entry.meta) and "label" in batch:
        kwargs["labels"] = batch["label"]
    elif "labels" in needs:
        raise ConfigError(
            f"loss {entry.name!r} needs labels, but the dataset's samples have no 'label'"
        )
    if "index" in needs:
        if "index" not in batch:
            raise ConfigError(
                f"loss {entry.name!r} needs the samples' 'index', which the dataset lacks"
            )
        kwargs["index"] = batch["index"]
    return kwargs


def fill_dataset_size(spec: dict[str, Any], dataset_size: int) -> None:
    """Give losses with per-sample state (``num_samples``) the dataset size by default."""
    factory = manyview.entry("loss", spec["name"]).load()
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return
    if "num_samples" in params and "num_samples" not in spec["options"]:
        spec["options"]["num_samples"] = dataset_size
