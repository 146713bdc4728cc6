"""Built-in datasets, readers, configurations, encoders, recipes and benchmarks of the core."""

from __future__ import annotations

from typing import Any

from manyview.hookspecs import hookimpl
from manyview.registry import register_all

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
"""The image reader's file endings (``manyview.datasets.files.IMAGE_EXTENSIONS``, written out
here so that listing imports nothing heavy)."""

DATASETS = {
    "synthetic": {
        "factory": "manyview.datasets.synthetic:SyntheticModalities",
        "summary": "Class-structured vectors in several modalities, made offline from a seed",
        "modalities": "vector",
    },
    "manifest": {
        "factory": "manyview.datasets.manifest:Manifest",
        "summary": "A CSV or JSONL manifest: a file path or a string per modality, plus a label",
        "modalities": "image,audio,text",
    },
    "digits": {
        "factory": "manyview.datasets.digits:Digits",
        "summary": "scikit-learn's 1,797 real 8x8 handwritten digits as images, any size, offline",
        "modalities": "image",
    },
    "imagefolder": {
        "factory": "manyview.datasets.imagefolder:ImageFolder",
        "summary": "Image files in class subfolders; unreadable files are skipped and counted",
        "modalities": "image",
    },
}

CONFIGS = {
    "quickstart": (
        "manyview.configs:quickstart",
        "Two vector modalities of the synthetic dataset, 4 views, one mv_dhel call",
    ),
}

READERS = {
    "image": {
        "factory": "manyview.readers.image:ImageReader",
        "summary": "Image files through Pillow to float32 (C, H, W) in [0, 1], optionally resized",
        "modality": "image",
        "suffixes": IMAGE_SUFFIXES,
    },
}

ENCODERS = {
    "mlp": {
        "factory": "manyview.encoders.mlp:MLPEncoder",
        "summary": "Multi-layer perceptron for vector inputs",
        "modality": "vector",
    },
    "reference_classifier": {
        "factory": "manyview.encoders.reference:ReferenceEncoder",
        "summary": "Features of a small classifier trained (cached) on a dataset's real images",
        "modality": "image",
    },
}

RECIPES = {
    "contrastive": (
        "manyview.recipes.contrastive:ContrastiveRecipe",
        "Any modalities and views through any contrastive losses in one call",
    ),
    "distill": (
        "manyview.recipes.distill:DistillRecipe",
        "A student against an EMA or frozen teacher with distillation losses",
    ),
}

BENCHMARKS = {
    "crossmodal": (
        "manyview.benchmarks.crossmodal:run",
        "Retrieval R@K, zero-shot, probe, kNN, alignment/uniformity/rank vs random-init",
    ),
    "generation": {
        "factory": "manyview.benchmarks.generation:run",
        "summary": "Image samples vs real: Fréchet distance, classifier accuracy per step count",
        "requires": "image_generator",
    },
}


@hookimpl
def manyview_register_datasets(register: Any) -> None:
    register_all(register, DATASETS)


@hookimpl
def manyview_register_configs(register: Any) -> None:
    register_all(register, CONFIGS)


@hookimpl
def manyview_register_readers(register: Any) -> None:
    register_all(register, READERS)


@hookimpl
def manyview_register_encoders(register: Any) -> None:
    register_all(register, ENCODERS)


@hookimpl
def manyview_register_recipes(register: Any) -> None:
    register_all(register, RECIPES)


@hookimpl
def manyview_register_benchmarks(register: Any) -> None:
    register_all(register, BENCHMARKS)
