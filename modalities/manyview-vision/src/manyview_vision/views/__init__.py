"""Batched image views with per-sample random parameters drawn from a ``torch.Generator``."""

from manyview_vision.views.augment import ImageAugment
from manyview_vision.views.base import ImageView
from manyview_vision.views.blur import GaussianBlur
from manyview_vision.views.color import ColorJitter, RandomGrayscale, RandomSolarize
from manyview_vision.views.geometry import HorizontalFlip, RandomResizedCrop
from manyview_vision.views.normalize import Normalize
from manyview_vision.views.rotation import Rotation
from manyview_vision.views.sets import ViewSet, byol, dino, multicrop, simclr

__all__ = [
    "ColorJitter",
    "GaussianBlur",
    "HorizontalFlip",
    "ImageAugment",
    "ImageView",
    "Normalize",
    "RandomGrayscale",
    "RandomResizedCrop",
    "RandomSolarize",
    "Rotation",
    "ViewSet",
    "byol",
    "dino",
    "multicrop",
    "simclr",
]
