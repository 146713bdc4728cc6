"""Benchmarks: evaluations of trained embeddings.

``crossmodal`` (:mod:`manyview.benchmarks.crossmodal`) runs retrieval, zero-shot, linear
probe, kNN and representation diagnostics for every modality a checkpoint has encoders for,
side by side with the random-init model. The metric functions on plain embeddings are in
:mod:`manyview.benchmarks.scores`. Submodules are imported on use, so ``import
manyview.benchmarks`` is cheap.
"""

from __future__ import annotations


class BenchmarkError(ValueError):
    """A benchmark cannot run on these inputs; the message says which and why."""


__all__ = ["BenchmarkError"]
