"""The image form of the core's ``contrastive`` recipe: view sets and image defaults.

:class:`ImageContrastiveRecipe` is :class:`manyview.recipes.ContrastiveRecipe` with two
additions:

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
crops together), so batch norm sees them together as in those papers. GradCache runs these
recipes too (``[run] gradcache_chunk``): it calls the same ``embed_views`` on chunks.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

import manyview
from manyview.config import ConfigError
from manyview.recipes import ContrastiveRecipe, build_views

__all__ = ["ImageContrastiveRecipe", "views_per_call"]

PLUGIN = "manyview-vision"
HEAD = {"projector_dim": 128, "projector_hidden": 512}

EXAMPLE = """
[run]
recipe = "{recipe}"
steps = 4
batch_size = 6
[data]
name = "synthetic"
options = {{ modalities = {{ image = [1, 8, 8] }}, num_samples = 24, num_classes = 3 }}
[modalities.image]
encoder = "small_cnn"
encoder_options = {{ in_chans = 1, width = 4, output_dim = 8 }}
projector_dim = 8
projector_hidden = 8
{views}
[[losses]]
name = "{loss}"
"""


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
        config, image_modalities, calls = self._fill(config)
        super().__init__(config, dataset)
        self.image_modalities, self.calls = image_modalities, calls

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
        if not images:
            raise ConfigError(
                f"{type(self).__name__}: no modality has an image encoder (e.g. encoder = "
                '"small_cnn" or "timm"); use recipe = "contrastive" for other modalities'
            )
        return config, images, calls

    def view_calls(self, name: str, x: Any, generator: torch.Generator) -> list[Any]:
        views: list[Any] = []
        for _ in range(self.calls[name]):
            made = self.views[name](x, generator)
            views.extend(made if isinstance(made, list | tuple) else [made])
        return views

    def embed_views(self, views: Sequence[Any]) -> Tensor:
        """``(n, M, D)``; the views of an image modality that share a shape go through its
        encoder in one forward pass."""
        if len(views) != len(self.view_modalities):
            return super().embed_views(views)  # its error message
        out: list[Tensor | None] = [None] * len(views)
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i, (name, v) in enumerate(zip(self.view_modalities, views, strict=True)):
            if name in self.image_modalities and isinstance(v, Tensor):
                groups.setdefault((name, *v.shape), []).append(i)
            else:
                out[i] = self.encode(name, v)
        for (name, *_), idx in groups.items():
            z = self.encode(name, torch.cat([views[i] for i in idx]))
            for i, part in zip(idx, z.split(len(views[idx[0]])), strict=True):
                out[i] = part
        return torch.stack(out, dim=1)  # type: ignore[arg-type]
