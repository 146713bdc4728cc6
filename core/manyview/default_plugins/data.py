"""Built-in datasets, readers, configurations, encoders, recipes and benchmarks of the core."""

from __future__ import annotations

from typing import Any

from manyview.hookspecs import hookimpl

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
"""The image reader's file endings (``manyview.datasets.files.IMAGE_EXTENSIONS``, written out
here so that listing imports nothing heavy)."""


@hookimpl
def manyview_register_datasets(register: Any) -> None:
    register(
        "synthetic",
        "manyview.datasets.synthetic:SyntheticModalities",
        summary="Class-structured vectors in several modalities, made offline from a seed",
        modalities="vector",
    )
    register(
        "manifest",
        "manyview.datasets.manifest:Manifest",
        summary="A CSV or JSONL manifest: a file path or a string per modality, plus a label",
        modalities="image,audio,text",
    )
    register(
        "imagefolder",
        "manyview.datasets.imagefolder:ImageFolder",
        summary="Image files in class subfolders; unreadable files are skipped and counted",
        modalities="image",
    )


@hookimpl
def manyview_register_configs(register: Any) -> None:
    register(
        "quickstart",
        "manyview.configs:quickstart",
        summary="Two vector modalities of the synthetic dataset, 4 views, one mv_dhel call",
    )


@hookimpl
def manyview_register_readers(register: Any) -> None:
    register(
        "image",
        "manyview.readers.image:ImageReader",
        summary="Image files through Pillow to float32 (C, H, W) in [0, 1], optionally resized",
        modality="image",
        suffixes=IMAGE_SUFFIXES,
    )


@hookimpl
def manyview_register_encoders(register: Any) -> None:
    register(
        "mlp",
        "manyview.encoders.mlp:MLPEncoder",
        summary="Multi-layer perceptron for vector inputs",
        modality="vector",
    )


@hookimpl
def manyview_register_recipes(register: Any) -> None:
    register(
        "contrastive",
        "manyview.recipes.contrastive:ContrastiveRecipe",
        summary="Any modalities and views through any contrastive losses in one call",
    )
    register(
        "distill",
        "manyview.recipes.distill:DistillRecipe",
        summary="A student against an EMA or frozen teacher with distillation losses",
    )


@hookimpl
def manyview_register_benchmarks(register: Any) -> None:
    register(
        "crossmodal",
        "manyview.benchmarks.crossmodal:run",
        summary="Retrieval R@K, zero-shot, probe, kNN, alignment/uniformity/rank vs random-init",
    )
