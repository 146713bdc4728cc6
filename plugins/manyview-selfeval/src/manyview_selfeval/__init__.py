"""manyview-selfeval: Self-E any-step text-to-image generation (Yu et al., arXiv 2512.22374).

Importing ``manyview_selfeval`` does not import torch or diffusers; the names below load
their module when first used.
"""

from __future__ import annotations

from manyview.lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "SelfELoss": "manyview_selfeval.objective",
    "draw_times": "manyview_selfeval.objective",
    "evaluate": "manyview_selfeval.objective",
    "lambda_st": "manyview_selfeval.objective",
    "merge_beta": "manyview_selfeval.objective",
    "renormalized_target": "manyview_selfeval.objective",
    "self_evaluation": "manyview_selfeval.objective",
    "tau_at": "manyview_selfeval.objective",
    "ToyDenoiser": "manyview_selfeval.toy",
    "mode_distance": "manyview_selfeval.toy",
    "toy_data": "manyview_selfeval.toy",
    "train_toy": "manyview_selfeval.toy",
    "DualTimeDenoiser": "manyview_selfeval.denoisers",
    "FluxDenoiser": "manyview_selfeval.denoisers",
    "GUIDANCES": "manyview_selfeval.sampling",
    "MLPDenoiser": "manyview_selfeval.denoisers",
    "SAMPLERS": "manyview_selfeval.sampling",
    "SECOND_TIMES": "manyview_selfeval.denoisers",
    "S_POLICIES": "manyview_selfeval.sampling",
    "TINY_CONFIGS": "manyview_selfeval.denoisers",
    "UNetDenoiser": "manyview_selfeval.denoisers",
    "check_denoiser": "manyview_selfeval.denoisers",
    "energy_preserving_cfg": "manyview_selfeval.sampling",
    "landing_times": "manyview_selfeval.sampling",
    "sample": "manyview_selfeval.sampling",
    "sinusoidal": "manyview_selfeval.denoisers",
    "time_grid": "manyview_selfeval.sampling",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
__all__ = ["__version__", *__all__]
