"""Registers manyview-vision's entries (entry-point group ``manyview``).

Factories are ``"module:attr"`` strings, so ``manyview list`` imports neither torch nor
timm; the modules load when an entry is first created. Each table maps a registered name
to its factory and summary (:func:`manyview.register_all`).
"""

from __future__ import annotations

from typing import Any

import manyview

ENCODERS = {
    "timm": (
        "manyview_vision.encoders.timm_encoder:TimmEncoder",
        "Any timm architecture by name (pretrained=False); weights from a local file",
    ),
    "small_cnn": (
        "manyview_vision.encoders.small_cnn:SmallCNN",
        "Small 6-layer CNN for tiny images (8x8 to 32x32), the CPU default",
    ),
}
"""timm architectures and a small CNN (image)."""

VIEWS = {
    "random_resized_crop": (
        "manyview_vision.views.geometry:RandomResizedCrop",
        "Random resized crop per sample (torchvision's scale/ratio), one grid_sample",
    ),
    "horizontal_flip": (
        "manyview_vision.views.geometry:HorizontalFlip",
        "Mirror left-right with probability p",
    ),
    "color_jitter": (
        "manyview_vision.views.color:ColorJitter",
        "Brightness/contrast/saturation/hue per sample, random order (torchvision's)",
    ),
    "random_grayscale": (
        "manyview_vision.views.color:RandomGrayscale",
        "Grayscale with probability p",
    ),
    "gaussian_blur": (
        "manyview_vision.views.blur:GaussianBlur",
        "Gaussian blur with per-sample sigma, separable, probability p",
    ),
    "solarize": (
        "manyview_vision.views.color:RandomSolarize",
        "Invert pixels above a threshold, probability p",
    ),
    "image_normalize": (
        "manyview_vision.views.normalize:Normalize",
        "(x - mean) / std per channel",
    ),
    "image_augment": (
        "manyview_vision.views.augment:ImageAugment",
        "A full SSL pipeline in one batched view: crop, flip, jitter, gray, blur, solarize",
    ),
    "rotation": (
        "manyview_vision.views.rotation:Rotation",
        "Rotated copies by 0/90/180/270 degrees, contiguous per sample (SLA)",
    ),
    # View sets: one call makes views_per_call views.
    "simclr": {
        "factory": "manyview_vision.views.sets:simclr",
        "summary": "View set: SimCLR's two views: crop, flip, strong colour jitter, gray, blur",
        "views_per_call": 2,
    },
    "byol": {
        "factory": "manyview_vision.views.sets:byol",
        "summary": "View set: BYOL's two asymmetric views (blur 1.0/0.1, solarize 0/0.2)",
        "views_per_call": 2,
    },
    "multicrop": {
        "factory": "manyview_vision.views.sets:multicrop",
        "summary": "View set: K global + L local crops at two sizes (SwAV; default 2 + 6)",
        "views_per_call": 8,
    },
    "dino": {
        "factory": "manyview_vision.views.sets:dino",
        "summary": "View set: DINO's 2 global + 8 local crops with its blur and solarize",
        "views_per_call": 10,
    },
}
"""Batched, seeded image augmentations, and the view sets of SimCLR, BYOL, SwAV and DINO
(image)."""

RECIPES = {
    "simclr": (
        "manyview_vision.recipes.simclr:SimCLRRecipe",
        "SimCLR on images: two simclr views, MLP head, any contrastive loss",
    ),
    "multicrop": (
        "manyview_vision.recipes.multicrop:MultiCropRecipe",
        "M = K global + L local crops per image through any multi-view loss",
    ),
    "supcon": (
        "manyview_vision.recipes.supcon:SupConRecipe",
        "Supervised contrastive learning on images (labels, simclr views)",
    ),
}
"""SimCLR, multi-crop and supervised-contrastive training on images."""


@manyview.hookimpl
def manyview_register_encoders(register: Any) -> None:
    manyview.register_all(register, ENCODERS, modality="image")


@manyview.hookimpl
def manyview_register_views(register: Any) -> None:
    manyview.register_all(register, VIEWS, modality="image")


@manyview.hookimpl
def manyview_register_recipes(register: Any) -> None:
    manyview.register_all(register, RECIPES)
