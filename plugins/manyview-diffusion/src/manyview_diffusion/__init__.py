"""manyview-diffusion: diffusion networks as representation learners.

Importing ``manyview_diffusion`` does not import torch or diffusers; the names below load
their module when first used.
"""

from __future__ import annotations

from manyview.lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "AugmentConditioned": "manyview_diffusion.augment",
    "DDAEDiT": "manyview_diffusion.encoders.ddae",
    "DDAEEncoder": "manyview_diffusion.encoders.ddae",
    "DDAEUNet": "manyview_diffusion.encoders.ddae",
    "EDMAugment": "manyview_diffusion.augment",
    "DDPMLoss": "manyview_diffusion.objectives",
    "EDMLoss": "manyview_diffusion.objectives",
    "FeatureTap": "manyview_diffusion.taps",
    "FlowMatchingLoss": "manyview_diffusion.objectives",
    "POOLS": "manyview_diffusion.taps",
    "SAMPLERS": "manyview_diffusion.sampling",
    "SelfConditioned": "manyview_diffusion.selfcond",
    "TINY_CONFIGS": "manyview_diffusion.networks",
    "attention_backend": "manyview_diffusion.attention",
    "block_names": "manyview_diffusion.taps",
    "ddim_sample": "manyview_diffusion.sampling",
    "edm_precondition": "manyview_diffusion.objectives",
    "edm_sample": "manyview_diffusion.sampling",
    "flow_sample": "manyview_diffusion.sampling",
    "mlp_overhead": "manyview_diffusion.selfcond",
    "network_call": "manyview_diffusion.objectives",
    "build_network": "manyview_diffusion.networks",
    "load_network": "manyview_diffusion.networks",
    "pool_features": "manyview_diffusion.taps",
    "resolve_module": "manyview_diffusion.taps",
    "sample": "manyview_diffusion.sampling",
    "set_attention": "manyview_diffusion.attention",
    "unwrap_network": "manyview_diffusion.networks",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
__all__ = ["__version__", *__all__]
