"""One SSL augmentation pipeline as a single view: crop, flip, colour, blur, solarize."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from manyview_vision.views.base import ImageView
from manyview_vision.views.blur import GaussianBlur
from manyview_vision.views.color import ColorJitter, RandomGrayscale, RandomSolarize
from manyview_vision.views.geometry import RandomResizedCrop
from manyview_vision.views.normalize import Normalize


class ImageAugment(ImageView):
    """The SimCLR-style augmentation pipeline in one batched pass, with every parameter
    exposed (defaults: SimCLR's ImageNet pipeline at strength 1).

    In order: :class:`RandomResizedCrop` with the horizontal flip fused into its sampling
    grid, :class:`ColorJitter` (probability ``jitter_p``), :class:`RandomGrayscale`,
    :class:`GaussianBlur`, :class:`RandomSolarize`, and :class:`Normalize` when ``mean``
    is given. A stage whose probability is 0 is skipped. Use it ``num_views`` times (the
    core ``contrastive`` recipe does), or as a building block of the view sets.

    Args:
        size: output size (int or (height, width)); ``None``: the input's size times
            ``relative_size``.
        scale, ratio: the crop's area-fraction and aspect-ratio ranges.
        hflip_p: horizontal flip probability.
        brightness, contrast, saturation, hue: jitter strengths (see :class:`ColorJitter`).
        jitter_p: probability of the colour jitter.
        random_order: per-sample random order of the jitter operations.
        grayscale_p: probability of grayscale.
        blur_p: probability of the Gaussian blur; ``blur_sigma`` its sigma range and
            ``blur_kernel`` its odd kernel size (``None``: 10% of the output side).
        solarize_p: probability of solarize at ``solarize_threshold``.
        mean, std: normalise at the end when given (one value per channel).
        relative_size: see ``size``.

    Inputs: images (N, C, H, W) or (N, H, W), C = 1 or 3, float in [0, 1] or uint8.
    Output: float (N, C, *size), in [0, 1] unless normalised.
    """

    label = "image_augment"
    modifies_input = False
    reads_uint8 = True

    def __init__(
        self,
        size: int | Sequence[int] | None = None,
        scale: Sequence[float] = (0.08, 1.0),
        ratio: Sequence[float] = (3 / 4, 4 / 3),
        hflip_p: float = 0.5,
        brightness: float | Sequence[float] = 0.8,
        contrast: float | Sequence[float] = 0.8,
        saturation: float | Sequence[float] = 0.8,
        hue: float | Sequence[float] = 0.2,
        jitter_p: float = 0.8,
        random_order: bool = True,
        grayscale_p: float = 0.2,
        blur_p: float = 0.5,
        blur_sigma: Sequence[float] = (0.1, 2.0),
        blur_kernel: int | None = None,
        solarize_p: float = 0.0,
        solarize_threshold: float = 0.5,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        relative_size: float = 1.0,
    ) -> None:
        super().__init__()
        stages: list[ImageView] = [
            RandomResizedCrop(size, scale, ratio, hflip_p=hflip_p, relative_size=relative_size)
        ]
        jitter = ColorJitter(brightness, contrast, saturation, hue, jitter_p, random_order)
        if jitter_p > 0 and any(r is not None for r in jitter.ranges):
            stages.append(jitter)
        if grayscale_p > 0:
            stages.append(RandomGrayscale(grayscale_p))
        if blur_p > 0:
            stages.append(GaussianBlur(blur_kernel, blur_sigma, blur_p))
        if solarize_p > 0:
            stages.append(RandomSolarize(solarize_threshold, solarize_p))
        if (mean is None) != (std is None):
            raise ValueError(f"{self.label}: give both mean and std to normalise, or neither")
        if mean is not None and std is not None:
            stages.append(Normalize(mean, std))
        self.stages = nn.ModuleList(stages)

    def transform(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        # The crop makes a new float batch (converting uint8 block by block); every later
        # stage works on it in place.
        for stage in self.stages:
            x = stage.transform(x, generator)
        return x
