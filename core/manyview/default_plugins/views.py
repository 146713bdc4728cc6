"""Built-in views that work on any modality's embeddings."""

from __future__ import annotations

from typing import Any

from manyview.hookspecs import hookimpl


@hookimpl
def manyview_register_views(register: Any) -> None:
    register(
        "embedding_noise",
        "manyview.views.embedding_noise:EmbeddingNoise",
        summary="Sign-aligned uniform noise of norm eps on embeddings (XSimGCL)",
        modality="embedding",
    )
    register(
        "gaussian_noise",
        "manyview.views.vector:GaussianNoise",
        summary="Gaussian noise on every feature of a vector batch",
        modality="vector",
    )
    register(
        "feature_mask",
        "manyview.views.vector:FeatureMask",
        summary="Zero each feature with probability p, per sample",
        modality="vector",
    )
