"""View sets: several views of one batch per call (SimCLR, BYOL, DINO, multi-crop).

A view set is a view whose ``forward(x, *, generator=None)`` returns a **list** of
``views_per_call`` batches, one per view, in a fixed order (multi-crop: the global crops,
then the local crops). The views of one call are independent draws from the generator.
The image recipes of this plugin (``simclr``, ``multicrop``, ``supcon``) take such lists:
``num_views`` there counts views, a multiple of ``views_per_call``. The core's
``contrastive`` recipe takes one tensor per call; use :class:`ImageAugment` (registered as
``image_augment``) there instead, ``num_views`` times.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from manyview.options import check_int
from manyview_vision.functional import check_images
from manyview_vision.views.augment import ImageAugment

LOCAL_RELATIVE_SIZE = 96 / 224
"""Local crops' side relative to the global crops' when no size is given (DINO, SwAV)."""


class ViewSet(nn.Module):
    """Several augmentation pipelines applied to the same batch: one output per pipeline.

    Args:
        pipelines: the views, in output order (the same module may appear several times).
        name: the preset's name, for messages and ``repr``.

    Inputs: images (N, C, H, W) or (N, H, W), float in [0, 1] or uint8 (converted once).
    Output: a list of ``views_per_call`` float batches.
    """

    def __init__(self, pipelines: Sequence[ImageAugment], name: str = "view_set") -> None:
        super().__init__()
        if not pipelines:
            raise ValueError(f"{name}: a view set needs at least one pipeline")
        self.pipelines = nn.ModuleList(pipelines)
        self.name = name

    @property
    def views_per_call(self) -> int:
        """How many views one call returns."""
        return len(self.pipelines)

    def forward(self, x: Any, *, generator: torch.Generator | None = None) -> list[Tensor]:
        if isinstance(x, list | tuple):
            raise ValueError(f"{self.name}: a view set takes one image batch, not a list")
        x = check_images(x, self.name)  # each pipeline's crop converts uint8 blockwise
        return [p.transform(x, generator) for p in self.pipelines]

    def example_inputs(self, n: int = 4, *, generator: torch.Generator | None = None) -> Tensor:
        """A batch of ``n`` random RGB 16 x 16 images in [0, 1]."""
        return torch.rand(n, 3, 16, 16, generator=generator)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, views_per_call={self.views_per_call}"


def _strength(s: float) -> dict[str, float]:
    """SimCLR's colour distortion of strength s: jitter (0.8s, 0.8s, 0.8s, 0.2s)."""
    if not s >= 0:
        raise ValueError(f"strength must be >= 0, got {s!r}")
    return {
        "brightness": 0.8 * s,
        "contrast": 0.8 * s,
        "saturation": 0.8 * s,
        "hue": min(0.2 * s, 0.5),
    }


def simclr(
    size: int | Sequence[int] | None = None,
    *,
    strength: float = 1.0,
    scale: Sequence[float] = (0.08, 1.0),
    blur_p: float = 0.5,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> ViewSet:
    """SimCLR's two views (Chen et al. 2020, appendix A): random resized crop (0.08-1),
    flip, colour jitter of strength s (0.8s, 0.8s, 0.8s, 0.2s) with p = 0.8, grayscale
    p = 0.2, Gaussian blur p = 0.5 (SimCLR's CIFAR setting drops it: ``blur_p=0``).

    Args:
        size: output size; ``None`` keeps the input's.
        strength: colour distortion strength s.
        scale: crop area range.
        blur_p: blur probability.
        mean, std: normalise at the end when given.
    """
    aug = ImageAugment(size, scale=scale, **_strength(strength), blur_p=blur_p, mean=mean, std=std)
    return ViewSet([aug, aug], name="simclr")


def byol(
    size: int | Sequence[int] | None = None,
    *,
    scale: Sequence[float] = (0.08, 1.0),
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> ViewSet:
    """BYOL's two asymmetric views (Grill et al. 2020, table 6): crop (0.08-1), flip, jitter
    (0.4, 0.4, 0.2, 0.1) p = 0.8, grayscale p = 0.2; blur p = 1.0 / 0.1 and solarize
    p = 0 / 0.2 for view 1 / view 2.

    Args:
        size: output size; ``None`` keeps the input's.
        scale: crop area range.
        mean, std: normalise at the end when given.
    """
    common: dict[str, Any] = dict(
        scale=scale, brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1, mean=mean, std=std
    )
    return ViewSet(
        [
            ImageAugment(size, blur_p=1.0, solarize_p=0.0, **common),
            ImageAugment(size, blur_p=0.1, solarize_p=0.2, **common),
        ],
        name="byol",
    )


def multicrop(
    global_crops: int = 2,
    local_crops: int = 6,
    *,
    global_size: int | Sequence[int] | None = None,
    local_size: int | Sequence[int] | None = None,
    global_scale: Sequence[float] = (0.14, 1.0),
    local_scale: Sequence[float] = (0.05, 0.14),
    strength: float = 1.0,
    blur_p: float = 0.5,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> ViewSet:
    """Multi-crop (SwAV, Caron et al. 2020): K global crops then L smaller local crops, each
    with SimCLR's colour distortion (strength s) and blur p = 0.5.

    Args:
        global_crops, local_crops: K and L (K >= 1, L >= 0).
        global_size: global crops' size; ``None`` keeps the input's.
        local_size: local crops' size; ``None``: 96/224 of the global size (SwAV's 96 at 224).
        global_scale, local_scale: crop area ranges (SwAV: (0.14, 1) and (0.05, 0.14)).
        strength: colour distortion strength s.
        blur_p: blur probability.
        mean, std: normalise at the end when given.
    """
    _check_counts(global_crops, local_crops, "multicrop")
    common: dict[str, Any] = dict(**_strength(strength), blur_p=blur_p, mean=mean, std=std)
    glob = ImageAugment(global_size, scale=global_scale, **common)
    local = _local(global_size, local_size, local_scale, common)
    return ViewSet([glob] * global_crops + [local] * local_crops, name="multicrop")


def dino(
    local_crops: int = 8,
    *,
    global_size: int | Sequence[int] | None = None,
    local_size: int | Sequence[int] | None = None,
    global_scale: Sequence[float] = (0.4, 1.0),
    local_scale: Sequence[float] = (0.05, 0.4),
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> ViewSet:
    """DINO's views (Caron et al. 2021, ``DataAugmentationDINO``): two global crops (0.4-1),
    then ``local_crops`` local crops (0.05-0.4) at 96/224 of the global size; all with flip,
    jitter (0.4, 0.4, 0.2, 0.1) p = 0.8 and grayscale p = 0.2; blur p = 1.0 on global 1,
    p = 0.1 plus solarize p = 0.2 on global 2, p = 0.5 on the local crops.

    Args:
        local_crops: number of local crops (DINO: 8; 0 for two global crops only).
        global_size: global crops' size; ``None`` keeps the input's.
        local_size: local crops' size; ``None``: 96/224 of the global size.
        global_scale, local_scale: crop area ranges.
        mean, std: normalise at the end when given.
    """
    _check_counts(2, local_crops, "dino")
    common: dict[str, Any] = dict(
        brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1, mean=mean, std=std
    )
    first = ImageAugment(global_size, scale=global_scale, blur_p=1.0, **common)
    second = ImageAugment(global_size, scale=global_scale, blur_p=0.1, solarize_p=0.2, **common)
    local = _local(global_size, local_size, local_scale, {**common, "blur_p": 0.5})
    return ViewSet([first, second] + [local] * local_crops, name="dino")


def _local(
    global_size: Any, local_size: Any, scale: Sequence[float], common: dict[str, Any]
) -> ImageAugment:
    if local_size is not None:
        return ImageAugment(local_size, scale=scale, **common)
    if global_size is not None:
        g = (global_size, global_size) if isinstance(global_size, int) else tuple(global_size)
        size = tuple(max(1, round(s * LOCAL_RELATIVE_SIZE)) for s in g)
        return ImageAugment(size, scale=scale, **common)
    return ImageAugment(None, scale=scale, relative_size=LOCAL_RELATIVE_SIZE, **common)


def _check_counts(global_crops: int, local_crops: int, who: str) -> None:
    check_int(global_crops, "global_crops", who)
    check_int(local_crops, "local_crops", who, least=0)
