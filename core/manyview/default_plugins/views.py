"""Built-in views that work on any modality's embeddings."""

from __future__ import annotations

from typing import Any

from manyview.hookspecs import hookimpl
from manyview.registry import register_all

BUILTIN_VIEWS: dict[str, dict[str, str]] = {
    "embedding_noise": {
        "factory": "manyview.views.embedding_noise:EmbeddingNoise",
        "summary": "Sign-aligned uniform noise of norm eps on embeddings (XSimGCL)",
        "modality": "embedding",
    },
    "gaussian_noise": {
        "factory": "manyview.views.vector:GaussianNoise",
        "summary": "Gaussian noise on every feature of a vector batch",
        "modality": "vector",
    },
    "feature_mask": {
        "factory": "manyview.views.vector:FeatureMask",
        "summary": "Zero each feature with probability p, per sample",
        "modality": "vector",
    },
}
"""Name -> factory, summary and modality (``embedding`` or ``vector``)."""


@hookimpl
def manyview_register_views(register: Any) -> None:
    register_all(register, BUILTIN_VIEWS)
