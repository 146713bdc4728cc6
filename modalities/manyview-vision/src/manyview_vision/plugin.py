"""Registers manyview-vision's entries (entry-point group ``manyview``).

Factories are ``"module:attr"`` strings, so ``manyview list`` imports neither torch nor
timm; the modules load when an entry is first created.
"""

from __future__ import annotations

from typing import Any

import manyview

_VIEWS = "manyview_vision.views"


@manyview.hookimpl
def manyview_register_encoders(register: Any) -> None:
    register(
        "timm",
        "manyview_vision.encoders.timm_encoder:TimmEncoder",
        summary="Any timm architecture by name (pretrained=False); weights from a local file",
        modality="image",
    )
    register(
        "small_cnn",
        "manyview_vision.encoders.small_cnn:SmallCNN",
        summary="Small 6-layer CNN for tiny images (8x8 to 32x32), the CPU default",
        modality="image",
    )


@manyview.hookimpl
def manyview_register_views(register: Any) -> None:
    single = {
        "random_resized_crop": (
            "geometry:RandomResizedCrop",
            "Random resized crop per sample (torchvision's scale/ratio), one grid_sample",
        ),
        "horizontal_flip": ("geometry:HorizontalFlip", "Mirror left-right with probability p"),
        "color_jitter": (
            "color:ColorJitter",
            "Brightness/contrast/saturation/hue per sample, random order (torchvision's)",
        ),
        "random_grayscale": ("color:RandomGrayscale", "Grayscale with probability p"),
        "gaussian_blur": (
            "blur:GaussianBlur",
            "Gaussian blur with per-sample sigma, separable, probability p",
        ),
        "solarize": ("color:RandomSolarize", "Invert pixels above a threshold, probability p"),
        "image_normalize": ("normalize:Normalize", "(x - mean) / std per channel"),
        "image_augment": (
            "augment:ImageAugment",
            "A full SSL pipeline in one batched view: crop, flip, jitter, gray, blur, solarize",
        ),
        "rotation": (
            "rotation:Rotation",
            "Rotated copies by 0/90/180/270 degrees, contiguous per sample (SLA)",
        ),
    }
    for name, (target, summary) in single.items():
        register(name, f"{_VIEWS}.{target}", summary=summary, modality="image")
    sets = {
        "simclr": ("SimCLR's two views: crop, flip, strong colour jitter, gray, blur", 2),
        "byol": ("BYOL's two asymmetric views (blur 1.0/0.1, solarize 0/0.2)", 2),
        "multicrop": ("K global + L local crops at two sizes (SwAV; default 2 + 6)", 8),
        "dino": ("DINO's 2 global + 8 local crops with its blur and solarize", 10),
    }
    for name, (summary, count) in sets.items():
        register(
            name,
            f"{_VIEWS}.sets:{name}",
            summary=f"View set: {summary}",
            modality="image",
            views_per_call=count,
        )


@manyview.hookimpl
def manyview_register_recipes(register: Any) -> None:
    register(
        "simclr",
        "manyview_vision.recipes.simclr:SimCLRRecipe",
        summary="SimCLR on images: two simclr views, MLP head, any contrastive loss",
    )
    register(
        "multicrop",
        "manyview_vision.recipes.multicrop:MultiCropRecipe",
        summary="M = K global + L local crops per image through any multi-view loss",
    )
    register(
        "supcon",
        "manyview_vision.recipes.supcon:SupConRecipe",
        summary="Supervised contrastive learning on images (labels, simclr views)",
    )
