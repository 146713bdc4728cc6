"""The ``distill`` recipe: a student, a teacher and distillation losses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

import manyview
from manyview.config import ConfigError
from manyview.recipes.base import Recipe, StepOutput, loss_inputs, make_loss
from manyview.recipes.contrastive import build_encoder, build_views, projector


class Student(nn.Module):
    """An encoder followed by its projector (or head): ``x -> (N, D)``."""

    def __init__(self, encoder: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.encoder, self.head = encoder, head
        self.output_dim = getattr(head, "out_features", None) or encoder.output_dim

    def forward(self, x: Any) -> Tensor:
        return self.head(self.encoder(x))


class DistillRecipe(Recipe):
    """Train a student of one modality against a teacher's outputs.

    The student (encoder + head) sees ``num_views`` views of its modality; the teacher sees
    the first ``teacher_views`` of them (``[recipe_options]``, default 1). Each loss gets the
    student's output — ``(N, D)`` for view 0, or ``(N, V, D)`` for every view when the loss
    takes three dimensions (DINO) — and the teacher's as ``targets``. An ``ema`` teacher
    averages the student itself (self-distillation: DINO, BYOL-style); a ``frozen`` teacher
    is built from ``[teacher] options`` (``encoder``, ``encoder_kwargs``, ``checkpoint``).
    """

    def __init__(self, config: Mapping[str, Any], dataset: Any) -> None:
        super().__init__()
        modalities = config["modalities"]
        if len(modalities) != 1:
            raise ConfigError(
                f"distill recipe: the student sees one modality; got {sorted(modalities)}"
            )
        ((name, modality),) = modalities.items()
        if name not in dataset[0]:
            raise ConfigError(f"[modalities.{name}]: the dataset's samples have no {name!r}")
        encoder = build_encoder(name, modality, dataset)
        dim = modality["projector_dim"] or encoder.output_dim
        head = projector(encoder.output_dim, dim, modality["projector_hidden"])
        self.model = Student(encoder, head)
        self.modality = name
        self.views = build_views(name, modality)
        self.num_views = modality["num_views"]
        options = config.get("recipe_options", {})
        self.teacher_views = int(options.get("teacher_views", 1))
        if not 1 <= self.teacher_views <= self.num_views:
            raise ConfigError(
                f"[recipe_options] teacher_views must be between 1 and num_views = {self.num_views}"
            )
        spec = config.get("teacher")
        if spec is None:
            raise ConfigError('distill recipe: add a [teacher] table with name = "ema" or "frozen"')
        teacher_options = dict(spec["options"])
        try:
            entry = manyview.entry("teacher", spec["name"])
            if spec["name"] in ("ema", "self") or "student" in _params(entry):
                teacher_options.setdefault("student", self.model)
            self.teacher = manyview.create("teacher", spec["name"], **teacher_options)
        except (LookupError, TypeError, ValueError) as exc:
            raise ConfigError(f"[teacher] ({spec['name']}): {exc}") from None
        specs = [{**s, "options": dict(s["options"])} for s in config["losses"]]
        teacher_dim = self._teacher_dim(dataset)
        for s in specs:  # tell adapters and heads the two widths unless the config does
            params = _params(manyview.entry("loss", s["name"]))
            if "student_dim" in params and teacher_dim is not None:
                s["options"].setdefault("student_dim", self.model.output_dim)
                s["options"].setdefault("teacher_dim", teacher_dim)
        self.losses = nn.ModuleList(
            [make_loss(s, f"[[losses]] #{i + 1}") for i, s in enumerate(specs)]
        )
        self.entries = [manyview.entry("loss", s["name"]) for s in config["losses"]]
        self.weights = [float(s["weight"]) for s in config["losses"]]
        self.names = [s["name"] for s in config["losses"]]
        for i, loss in enumerate(self.losses):
            if getattr(loss, "input_kind", "views") != "student":
                raise ConfigError(
                    f"[[losses]] #{i + 1} ({self.names[i]}) is not a distillation loss; "
                    'use recipe = "contrastive"'
                )

    def _teacher_dim(self, dataset: Any) -> int | None:
        """The width of the teacher's output, read from one sample."""
        x = dataset[0][self.modality]
        if not isinstance(x, Tensor):
            return None
        with torch.no_grad():
            out = self.teacher(x[None])
        return int(out.shape[-1]) if isinstance(out, Tensor) else None

    def step(self, batch: Mapping[str, Any], generator: torch.Generator) -> StepOutput:
        x = batch[self.modality]
        views = [self.views(x, generator) for _ in range(self.num_views)]
        student = torch.stack([self.model(v) for v in views], dim=1)  # (N, V, D)
        with torch.no_grad():
            teacher = torch.stack([self.teacher(v) for v in views[: self.teacher_views]], dim=1)
        total = student.new_zeros(())
        components = {}
        for name, entry, loss, weight in zip(
            self.names, self.entries, self.losses, self.weights, strict=True
        ):
            three = 3 in getattr(loss, "student_dims", ()) and 2 not in getattr(
                loss, "student_dims", ()
            )
            s, t = (student, teacher) if three else (student[:, 0], teacher[:, 0])
            kwargs = {k: v for k, v in loss_inputs(entry, loss, batch).items() if k != "index"}
            value = loss(s, targets=t, **kwargs)
            components[name] = value.detach()
            total = total + weight * value
        return StepOutput(total, components, student.detach())


def _params(entry: manyview.Entry) -> set[str]:
    import inspect

    try:
        return set(inspect.signature(entry.load()).parameters)
    except (TypeError, ValueError):
        return set()
