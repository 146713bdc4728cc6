"""The ``distill`` recipe: a student, a teacher and distillation losses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from manyview.config import ConfigError
from manyview.context import BuildContext
from manyview.recipes.base import EmbedRecipe, StepOutput, batch_inputs
from manyview.recipes.parts import (
    Projector,
    build_encoder,
    build_projector,
    build_teacher,
    build_views,
    first_sample,
    recipe_options,
)
from manyview.recipes.weighted import WeightedLosses

__all__ = ["DistillRecipe", "Student"]


class Student(nn.Module):
    """An encoder followed by its projector (or head): ``x -> (N, output_dim)``."""

    def __init__(self, encoder: nn.Module, head: Projector) -> None:
        super().__init__()
        self.encoder, self.head = encoder, head
        self.output_dim = head.output_dim

    def forward(self, x: Any) -> Tensor:
        return self.head(self.encoder(x))


class DistillRecipe(EmbedRecipe):
    """Train a student of one modality against a teacher's outputs.

    The student (encoder + head) sees ``num_views`` views of its modality. The teacher sees,
    for each of the first ``teacher_views`` views (``[recipe_options]``, default 1), the
    batch with the student's modality replaced by that view (the teacher protocol: a mapping
    modality -> batch; a ``privileged`` teacher reads other modalities of it). Each loss gets
    the student's output — ``(N, D)`` for view 0, or ``(N, V, D)`` for every view when the
    loss only takes three dimensions (DINO) — and the teacher's as ``targets``, plus the
    batch's ``labels``/``index`` where the loss declares them.

    The teacher is built from ``[teacher]`` with the context keys ``student`` (the student
    module), ``modality``, ``steps``, ``student_dim``; the losses with ``student_dim`` and
    ``teacher_dim`` (read from one teacher call on a sample).
    """

    example_config = """
[run]
recipe = "distill"
steps = 4
batch_size = 8
[data]
name = "synthetic"
options = { modalities = { a = 6 }, num_samples = 32, num_classes = 4 }
[modalities.a]
encoder = "mlp"
encoder_options = { output_dim = 8, hidden_dim = 8 }
num_views = 2
views = [{ name = "gaussian_noise", options = { std = 0.2 } }]
projector_dim = 8
[recipe_options]
teacher_views = 2
[teacher]
name = "ema"
options = { momentum = 0.9 }
[[losses]]
name = "dino"
options = { out_dim = 8 }
[[losses]]
name = "feature"
"""

    def __init__(self, config: Mapping[str, Any], dataset: Any) -> None:
        super().__init__()
        modalities = config["modalities"]
        if len(modalities) != 1:
            raise ConfigError(
                f"distill recipe: the student sees one modality; got {sorted(modalities)}"
            )
        ((name, modality),) = modalities.items()
        sample = first_sample(dataset, (name,))
        encoder = build_encoder(name, modality, dataset)
        head = build_projector(modality, encoder.output_dim, default_dim=encoder.output_dim)
        self.model = Student(encoder, head)
        self.modality = name
        self.views = build_views(name, modality)
        self.num_views = modality["num_views"]
        options = recipe_options(config, {"teacher_views": 1}, "distill")
        self.teacher_views = options["teacher_views"]
        if (
            isinstance(self.teacher_views, bool)
            or not isinstance(self.teacher_views, int)
            or not 1 <= self.teacher_views <= self.num_views
        ):
            raise ConfigError(
                f"[recipe_options] teacher_views must be an integer between 1 and num_views = "
                f"{self.num_views}, got {self.teacher_views!r}"
            )
        context = BuildContext(
            dataset_size=len(dataset),
            student=self.model,
            student_dim=self.model.output_dim,
            modality=name,
            modalities=(name,),
            steps=config["run"]["steps"],
        )
        self.teacher = build_teacher(config.get("teacher"), context)
        context = context.with_(teacher_dim=self._teacher_dim(sample))
        provides = ["targets"] + [
            k for k, key in (("labels", "label"), ("index", "index")) if key in sample
        ]
        self.losses = WeightedLosses.from_config(
            config["losses"],
            context=context,
            takes="student",
            provides=provides,
            who="the distill recipe",
        )

    def teacher_inputs(self, batch: Mapping[str, Any], view: Any) -> dict[str, Any]:
        """What the teacher sees for one view: the batch with the student's modality
        replaced by the view."""
        return {**batch, self.modality: view}

    def _teacher_dim(self, sample: Mapping[str, Any]) -> int | None:
        """The width of the teacher's output, read from one sample."""
        from torch.utils.data import default_collate

        batch = default_collate([sample])
        try:
            with torch.no_grad():
                out = self.teacher(self.teacher_inputs(batch, batch[self.modality]))
        except (KeyError, ValueError, TypeError) as exc:
            raise ConfigError(
                f"[teacher]: the teacher cannot read this dataset's samples: {exc}"
            ) from None
        return int(out.shape[-1]) if isinstance(out, Tensor) else None

    @property
    def modalities(self) -> tuple[str, ...]:
        return (self.modality,)

    def encode(self, modality: str, inputs: Any) -> Tensor:
        if modality != self.modality:
            raise ValueError(f"the student encodes {self.modality!r}, not {modality!r}")
        return self.model(inputs)

    def draw(self, batch: Mapping[str, Any], generator: torch.Generator) -> list[Any]:
        x = batch[self.modality]
        return [self.views(x, generator) for _ in range(self.num_views)]

    def embed_views(self, views: Sequence[Any]) -> Tensor:
        return torch.stack([self.model(v) for v in views], dim=1)  # (N, V, D)

    def objective(self, z: Tensor, batch: Mapping[str, Any], views: Sequence[Any]) -> StepOutput:
        with torch.no_grad():
            teacher = torch.stack(
                [self.teacher(self.teacher_inputs(batch, v)) for v in views[: self.teacher_views]],
                dim=1,
            )

        def call(loss: nn.Module, inputs: dict[str, Any]) -> Tensor:
            dims = getattr(loss, "student_dims", (2,))
            if 3 in dims and 2 not in dims:  # every view (DINO)
                return loss(z, **inputs)
            if "targets" in inputs:
                inputs = {**inputs, "targets": teacher[:, 0]}
            return loss(z[:, 0], **inputs)

        total, components = self.losses.apply(call, targets=teacher, **batch_inputs(batch))
        return StepOutput(total, components, z.detach())
