"""The ``contrastive`` recipe: any number of modalities and views, any registered losses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from manyview.config import ConfigError
from manyview.context import BuildContext
from manyview.recipes.base import EmbedRecipe, StepOutput, batch_inputs
from manyview.recipes.parts import Projector, build_encoder, build_views, first_sample
from manyview.recipes.weighted import WeightedLosses

__all__ = ["ContrastiveRecipe"]


class ContrastiveRecipe(EmbedRecipe):
    """Encode every modality's views, project them to one space and apply the losses to
    all views at once: ``(N, M, D)`` with M = the sum of every modality's ``num_views``.

    With one modality this is SimCLR-style multi-view learning; with several, CLIP-style
    (two modalities) or multi-modal (M modalities in one loss call). Projectors are added
    when ``projector_dim`` is set or the encoders' output sizes differ.

    ``model`` is ``{"encoders": {modality: encoder}, "projectors": {modality: projector}}``;
    :meth:`encode` is a modality's encoder then projector. Subclasses may override
    :meth:`view_calls` (how a modality's views are made) and :meth:`embed_views` (e.g. to
    encode views of equal shape together).
    """

    example_config = """
[run]
recipe = "contrastive"
steps = 4
batch_size = 8
[data]
name = "synthetic"
options = { modalities = { a = 6, b = 5 }, num_samples = 32, num_classes = 4 }
[modalities.a]
encoder = "mlp"
encoder_options = { output_dim = 8, hidden_dim = 8 }
num_views = 2
views = [{ name = "gaussian_noise", options = { std = 0.1 } }]
[modalities.b]
encoder = "mlp"
encoder_options = { output_dim = 8, hidden_dim = 8 }
projector_dim = 8
[[losses]]
name = "mv_infonce"
"""

    def __init__(self, config: Mapping[str, Any], dataset: Any) -> None:
        super().__init__()
        modalities = config["modalities"]
        if not modalities:
            raise ConfigError(f"{self.who}: add at least one [modalities.<name>] table")
        sample = first_sample(dataset, modalities)
        encoders = {n: build_encoder(n, m, dataset) for n, m in modalities.items()}
        dims = {n: e.output_dim for n, e in encoders.items()}
        shared = max(m["projector_dim"] for m in modalities.values())
        if not shared and len(set(dims.values())) > 1:
            shared = min(dims.values())
        projectors = {
            n: Projector(dims[n], shared or None, m["projector_hidden"])
            for n, m in modalities.items()
        }
        self.model = nn.ModuleDict(
            {"encoders": nn.ModuleDict(encoders), "projectors": nn.ModuleDict(projectors)}
        )
        self.views = nn.ModuleDict({n: build_views(n, m) for n, m in modalities.items()})
        self.num_views = {n: m["num_views"] for n, m in modalities.items()}
        self.view_modalities = [n for n, count in self.num_views.items() for _ in range(count)]
        self.context = BuildContext(
            dataset_size=len(dataset),
            embed_dim=next(iter(projectors.values())).output_dim,
            modalities=tuple(modalities),
            steps=config["run"]["steps"],
        )
        provides = [k for k, key in (("labels", "label"), ("index", "index")) if key in sample]
        self.losses = WeightedLosses.from_config(
            config["losses"], context=self.context, provides=provides, who=f"the {self.who}"
        )
        self.losses.check_views(len(self.view_modalities))

    @property
    def who(self) -> str:
        return f"{type(self).__name__} recipe"

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.model["encoders"].keys())

    def encode(self, modality: str, inputs: Any) -> Tensor:
        if modality not in self.model["encoders"]:
            raise ValueError(
                f"no encoder for modality {modality!r} (this recipe has {list(self.modalities)})"
            )
        return self.model["projectors"][modality](self.model["encoders"][modality](inputs))

    def view_calls(self, name: str, x: Any, generator: torch.Generator) -> list[Any]:
        """The ``num_views`` views of modality ``name``'s batch ``x``."""
        return [self.views[name](x, generator) for _ in range(self.num_views[name])]

    def draw(self, batch: Mapping[str, Any], generator: torch.Generator) -> list[Any]:
        out: list[Any] = []
        for name in self.num_views:
            out.extend(self.view_calls(name, batch[name], generator))
        return out

    def embed_views(self, views: Sequence[Any]) -> Tensor:
        if len(views) != len(self.view_modalities):
            raise ValueError(
                f"{self.who}: embed_views got {len(views)} views, expected "
                f"{len(self.view_modalities)} ({', '.join(self.view_modalities)})"
            )
        z = [self.encode(name, v) for name, v in zip(self.view_modalities, views, strict=True)]
        return torch.stack(z, dim=1)

    def objective(self, z: Tensor, batch: Mapping[str, Any], views: Sequence[Any]) -> StepOutput:
        total, components = self.losses(z, **batch_inputs(batch))
        return StepOutput(total, components, z.detach())
