"""The ``contrastive`` recipe: any number of modalities and views, any registered losses."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

import manyview
from manyview.config import ConfigError
from manyview.recipes.base import Recipe, StepOutput, fill_dataset_size, loss_inputs, make_loss


class ViewPipeline(nn.Module):
    """Views applied in order, each drawing its randomness from the step's generator."""

    def __init__(self, views: list[nn.Module]) -> None:
        super().__init__()
        self.views = nn.ModuleList(views)

    def forward(self, x: Any, generator: torch.Generator) -> Any:
        for view in self.views:
            x = view(x, generator=generator)
        return x


def projector(in_dim: int, out_dim: int, hidden: int) -> nn.Module:
    """A linear projector, or a two-layer MLP head when ``hidden`` > 0 (SimCLR's)."""
    if hidden:
        return nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, out_dim))
    return nn.Linear(in_dim, out_dim)


def build_encoder(name: str, modality: Mapping[str, Any], dataset: Any) -> nn.Module:
    where = f"[modalities.{name}]"
    options = dict(modality["encoder_options"])
    try:
        factory = manyview.entry("encoder", modality["encoder"]).load()
        params = inspect.signature(factory).parameters
        sample = dataset[0].get(name)
        if "input_dim" in params and "input_dim" not in options and isinstance(sample, Tensor):
            options["input_dim"] = int(sample.shape[-1])  # infer vector sizes from the data
        encoder = manyview.create("encoder", modality["encoder"], **options)
    except (LookupError, TypeError, ValueError) as exc:
        raise ConfigError(f"{where} encoder {modality['encoder']!r}: {exc}") from None
    if not isinstance(getattr(encoder, "output_dim", None), int):
        raise ConfigError(f"{where} encoder {modality['encoder']!r} does not report output_dim")
    return encoder


def build_views(name: str, modality: Mapping[str, Any]) -> ViewPipeline:
    views = []
    for i, spec in enumerate(modality["views"]):
        where = f"[modalities.{name}] views[{i}] ({spec['name']})"
        try:
            views.append(manyview.create("view", spec["name"], **spec["options"]))
        except (LookupError, TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: {exc}") from None
    return ViewPipeline(views)


class ContrastiveRecipe(Recipe):
    """Encode every modality's views, project them to one space and apply the losses to
    all views at once: ``(N, M, D)`` with M = the sum of every modality's ``num_views``.

    With one modality this is SimCLR-style multi-view learning; with several, CLIP-style
    (two modalities) or multi-modal (M modalities in one loss call). Projectors are added
    when ``projector_dim`` is set or the encoders' output sizes differ.
    """

    def __init__(self, config: Mapping[str, Any], dataset: Any) -> None:
        super().__init__()
        modalities = config["modalities"]
        if not modalities:
            raise ConfigError("contrastive recipe: add at least one [modalities.<name>] table")
        sample = dataset[0]
        for name in modalities:
            if name not in sample:
                raise ConfigError(
                    f"[modalities.{name}]: the dataset's samples have no {name!r} "
                    f"(they have {sorted(k for k in sample if k not in ('label', 'index'))})"
                )
        encoders = {n: build_encoder(n, m, dataset) for n, m in modalities.items()}
        dims = {n: e.output_dim for n, e in encoders.items()}
        shared = max(m["projector_dim"] for m in modalities.values())
        if not shared and len(set(dims.values())) > 1:
            shared = min(dims.values())
        projectors = {
            n: projector(dims[n], shared or dims[n], m["projector_hidden"])
            if (shared or m["projector_hidden"])
            else nn.Identity()
            for n, m in modalities.items()
        }
        self.model = nn.ModuleDict(
            {
                "encoders": nn.ModuleDict(encoders),
                "projectors": nn.ModuleDict(projectors),
            }
        )
        self.views = nn.ModuleDict({n: build_views(n, m) for n, m in modalities.items()})
        self.num_views = {n: m["num_views"] for n, m in modalities.items()}
        total = sum(self.num_views.values())
        specs = []
        for i, spec in enumerate(config["losses"]):
            spec = {**spec, "options": dict(spec["options"])}
            where = f"[[losses]] #{i + 1}"
            try:
                fill_dataset_size(spec, len(dataset))
            except LookupError as exc:
                raise ConfigError(f"{where}: {exc}") from None
            specs.append((spec, where))
        self.losses = nn.ModuleList([make_loss(s, w) for s, w in specs])
        self.entries = [manyview.entry("loss", s["name"]) for s, _ in specs]
        self.weights = [float(s["weight"]) for s, _ in specs]
        self.names = [s["name"] for s, _ in specs]
        for loss, (spec, where) in zip(self.losses, specs, strict=True):
            lo = getattr(loss, "min_views", 1)
            hi = getattr(loss, "max_views", None)
            if total < lo or (hi is not None and total > hi):
                raise ConfigError(
                    f"{where} ({spec['name']}) takes {lo}..{hi or 'any'} views, but the modalities "
                    f"give M = {total}; change num_views or use 'pwe'"
                )
            if getattr(loss, "input_kind", "views") != "views":
                raise ConfigError(
                    f'{where} ({spec["name"]}) is a distillation loss; use recipe = "distill"'
                )

    def embed(self, batch: Mapping[str, Any], generator: torch.Generator) -> Tensor:
        """``(N, M, D)``: every modality's views, encoded and projected, in config order."""
        views = []
        for name, count in self.num_views.items():
            encoder = self.model["encoders"][name]
            proj = self.model["projectors"][name]
            for _ in range(count):
                x = self.views[name](batch[name], generator)
                views.append(proj(encoder(x)))
        return torch.stack(views, dim=1)

    def _losses(self, z: Tensor, batch: Mapping[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        total = z.new_zeros(())
        components = {}
        for name, entry, loss, weight in zip(
            self.names, self.entries, self.losses, self.weights, strict=True
        ):
            value = loss(z, **loss_inputs(entry, loss, batch))
            components[name] = value.detach()
            total = total + weight * value
        return total, components

    def step(self, batch: Mapping[str, Any], generator: torch.Generator) -> StepOutput:
        z = self.embed(batch, generator)
        total, components = self._losses(z, batch)
        return StepOutput(total, components, z.detach())

    def step_gradcache(
        self,
        batch: Mapping[str, Any],
        generator: torch.Generator,
        *,
        chunk_size: int,
        loss_scale: float = 1.0,
    ) -> StepOutput:
        """The step with GradCache (:class:`manyview.training.gradcache.GradCache`): the views
        are drawn once, every view is encoded in chunks of ``chunk_size`` without a graph,
        the losses run on the whole ``(N, M, D)`` batch, and the chunks are encoded again
        with gradients. The gradients (times ``loss_scale``, e.g. 1/grad_accum) are
        accumulated into ``.grad`` here; the returned loss is detached.

        Raises:
            manyview.training.gradcache.NonFiniteLossError: the loss was not finite;
                nothing was backpropagated.
        """
        from manyview.training.gradcache import GradCache

        inputs, towers = [], []
        for name, count in self.num_views.items():
            tower = nn.Sequential(self.model["encoders"][name], self.model["projectors"][name])
            for _ in range(count):
                inputs.append(self.views[name](batch[name], generator))
                towers.append(tower)
        seen: dict[str, Any] = {}

        def loss_fn(z: Tensor) -> Tensor:
            total, seen["components"] = self._losses(z, batch)
            seen["z"] = z.detach()
            return total * loss_scale

        value = GradCache(towers, loss_fn, chunk_size=chunk_size).step(inputs)
        return StepOutput(value / loss_scale, seen["components"], seen["z"])
