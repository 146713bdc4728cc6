"""Image recipes: SimCLR, multi-crop and SupCon, built on the core's ``contrastive`` recipe.

Each is :class:`~manyview.recipes.ContrastiveRecipe` with two additions:

- **View sets.** A modality's view pipeline may contain one view set (a view with
  ``views_per_call`` > 1 that returns a list of batches, such as ``simclr`` or
  ``multicrop``). ``num_views`` counts views: it must be a multiple of ``views_per_call``
  (left at 1, it becomes ``views_per_call``), and the pipeline runs ``num_views /
  views_per_call`` times per step.
- **Defaults for image modalities** (modalities whose encoder is registered with
  ``modality = "image"``): no ``views`` means the recipe's view set; ``projector_dim`` and
  ``projector_hidden`` both 0 mean SimCLR's head (128 out, 512 hidden).

Views of one image modality that share a shape are encoded in one forward pass (SimCLR
encodes its two views together; multi-crop encodes the global crops together and the local
crops together), so batch norm sees them together as in those papers.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

import manyview
from manyview.config import ConfigError
from manyview.recipes import ContrastiveRecipe
from manyview.recipes.contrastive import build_views

PLUGIN = "manyview-vision"
HEAD = {"projector_dim": 128, "projector_hidden": 512}


def views_per_call(pipeline: nn.Module, where: str) -> int:
    """How many views one call of a modality's pipeline returns (1 without a view set)."""
    counts = [int(getattr(v, "views_per_call", 1)) for v in getattr(pipeline, "views", [])]
    sets = [c for c in counts if c > 1]
    if len(sets) > 1:
        raise ConfigError(f"{where}: use at most one view set (simclr, byol, dino, multicrop)")
    return sets[0] if sets else 1


class ImageContrastiveRecipe(ContrastiveRecipe):
    """The ``contrastive`` recipe with view sets and image defaults (see the module doc).

    Subclasses set ``default_view`` (a registered view-set name of this plugin)."""

    default_view: str = "simclr"

    def __init__(self, config: Mapping[str, Any], dataset: Any) -> None:
        config, self.image_modalities, self.calls = self._fill(config)
        super().__init__(config, dataset)

    def _fill(self, config: Mapping[str, Any]) -> tuple[dict[str, Any], list[str], dict[str, int]]:
        config = copy.deepcopy(dict(config))
        images, calls = [], {}
        for name, modality in config["modalities"].items():
            where = f"[modalities.{name}]"
            try:
                entry = manyview.entry("encoder", modality["encoder"])
            except LookupError as exc:
                raise ConfigError(f"{where} encoder {modality['encoder']!r}: {exc}") from None
            if entry.modality == "image":
                images.append(name)
                if not modality["views"]:
                    modality["views"] = [{"name": f"{PLUGIN}:{self.default_view}", "options": {}}]
                if not modality["projector_dim"] and not modality["projector_hidden"]:
                    modality.update(HEAD)
            per_call = views_per_call(build_views(name, modality), where)
            if modality["num_views"] == 1:
                modality["num_views"] = per_call
            if modality["num_views"] % per_call:
                raise ConfigError(
                    f"{where}: num_views = {modality['num_views']} is not a multiple of the view "
                    f"set's {per_call} views per call"
                )
            calls[name] = modality["num_views"] // per_call
        name = type(self).__name__
        if not images:
            raise ConfigError(
                f'{name}: no modality has an image encoder (e.g. encoder = "small_cnn" or '
                '"timm"); use recipe = "contrastive" for other modalities'
            )
        return config, images, calls

    def embed(self, batch: Mapping[str, Any], generator: torch.Generator) -> Tensor:
        """``(N, M, D)``: every modality's views, encoded and projected, in config order."""
        out: list[Tensor] = []
        for name in self.num_views:
            encoder = self.model["encoders"][name]
            proj = self.model["projectors"][name]
            views: list[Any] = []
            for _ in range(self.calls[name]):
                made = self.views[name](batch[name], generator)
                views.extend(made if isinstance(made, list | tuple) else [made])
            if name in self.image_modalities:
                out.extend(_encode_by_shape(encoder, proj, views))
            else:
                out.extend(proj(encoder(v)) for v in views)
        return torch.stack(out, dim=1)


def _encode_by_shape(encoder: nn.Module, proj: nn.Module, views: list[Tensor]) -> list[Tensor]:
    """Encode views of equal shape in one forward pass; return them in their order."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, v in enumerate(views):
        groups.setdefault(tuple(v.shape), []).append(i)
    result: list[Tensor | None] = [None] * len(views)
    for idx in groups.values():
        z = proj(encoder(torch.cat([views[i] for i in idx])))
        for i, part in zip(idx, z.split(len(views[idx[0]])), strict=True):
            result[i] = part
    return result  # type: ignore[return-value]


class SimCLRRecipe(ImageContrastiveRecipe):
    """SimCLR on images (Chen et al. 2020): two ``simclr`` views per image, SimCLR's
    projection head, and the configured losses (``infonce`` is NT-Xent).

    Configuration: ``[run] recipe = "simclr"``; an image modality with an image encoder;
    ``views`` empty for SimCLR's views, or any views (a view set, or ``image_augment``
    with ``num_views = 2``). Everything else as the ``contrastive`` recipe.
    """

    default_view = "simclr"


class MultiCropRecipe(ImageContrastiveRecipe):
    """Multi-view learning on images with multi-crop: K global + L local crops per image
    (default ``multicrop``: 2 + 6), all M = K + L views in one call of any multi-view loss
    (``mv_infonce``, ``mv_dhel``, ``pvc``, ``infonce`` with M positives, ...).

    Configuration: ``[run] recipe = "multicrop"``; ``views`` empty for ``multicrop``, or
    e.g. ``[{name = "dino"}]`` or ``[{name = "multicrop", options = {local_crops = 4}}]``.
    """

    default_view = "multicrop"


class SupConRecipe(ImageContrastiveRecipe):
    """Supervised contrastive learning on images (Khosla et al. 2020): SimCLR's views and
    head, and a label-using loss such as ``supcon``; the dataset's samples need a
    ``label``.
    """

    default_view = "simclr"

    def __init__(self, config: Mapping[str, Any], dataset: Any) -> None:
        if "label" not in dataset[0]:
            raise ConfigError("supcon recipe: the dataset's samples have no 'label'")
        labelled = []
        for spec in config["losses"]:
            try:
                entry = manyview.entry("loss", spec["name"])
            except LookupError:
                continue  # the contrastive recipe reports it
            if "labels" in entry.meta or "labels" in entry.meta.get("needs", ()):
                labelled.append(spec["name"])
        if not labelled:
            raise ConfigError(
                'supcon recipe: no loss uses the labels; add [[losses]] name = "supcon"'
            )
        super().__init__(config, dataset)
