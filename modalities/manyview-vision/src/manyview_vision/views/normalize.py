"""Per-channel normalisation of images."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from manyview_vision.views.base import ImageView, Params

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Normalize(ImageView):
    """``(x - mean) / std`` per channel (torchvision's ``Normalize``); deterministic.

    Args:
        mean: one value per channel, or one for all (default: ImageNet's RGB mean).
        std: one positive value per channel, or one for all (default: ImageNet's RGB std).

    Inputs: images (N, C, H, W) whose C matches ``len(mean)`` (or any C when it is 1).
    """

    label = "image_normalize"

    def __init__(
        self,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        super().__init__()
        mean_t = torch.as_tensor(
            list(mean) if isinstance(mean, Sequence) else [mean], dtype=torch.float64
        )
        std_t = torch.as_tensor(
            list(std) if isinstance(std, Sequence) else [std], dtype=torch.float64
        )
        if mean_t.dim() != 1 or std_t.dim() != 1 or len(mean_t) != len(std_t) or len(mean_t) < 1:
            raise ValueError(
                f"{self.label}: mean and std must be sequences of the same length, got "
                f"{list(mean_t.tolist())} and {list(std_t.tolist())}"
            )
        if not bool((std_t > 0).all()):
            raise ValueError(f"{self.label}: std must be positive, got {std_t.tolist()}")
        self.mean, self.std = tuple(mean_t.tolist()), tuple(std_t.tolist())

    def apply(self, x: Tensor, params: Params) -> Tensor:
        c = x.shape[1]
        if len(self.mean) not in (1, c):
            raise ValueError(
                f"{self.label}: {len(self.mean)} means and stds for images with {c} channels "
                f"(shape {tuple(x.shape)}); pass mean and std with {c} values"
            )
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).reshape(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).reshape(1, -1, 1, 1)
        return x.sub_(mean).div_(std)

    def extra_repr(self) -> str:
        return f"mean={self.mean}, std={self.std}"
