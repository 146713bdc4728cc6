"""Benchmarks: evaluations of trained embeddings and generated images.

``crossmodal`` (:mod:`manyview.benchmarks.crossmodal`) runs retrieval, zero-shot, linear
probe, kNN and representation diagnostics for every modality a checkpoint has encoders for,
side by side with the random-init model. ``generation``
(:mod:`manyview.benchmarks.generation`) scores the images of a recipe that generates them
(:class:`manyview.runs.ImageGenerator`): the Fréchet distance to the real images and a
reference classifier's accuracy per number of sampling steps. The metric functions on plain embeddings are in
:mod:`manyview.benchmarks.scores`. Submodules are imported on use, so ``import
manyview.benchmarks`` is cheap.
"""

from __future__ import annotations


class BenchmarkError(ValueError):
    """A benchmark cannot run on these inputs; the message says which and why."""


__all__ = ["BenchmarkError"]
