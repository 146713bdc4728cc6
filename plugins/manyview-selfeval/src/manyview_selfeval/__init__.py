"""manyview-selfeval: Self-E any-step text-to-image generation (Yu et al., arXiv 2512.22374).

Importing ``manyview_selfeval`` does not import torch or diffusers; the names below load
their module when first used.
"""

from __future__ import annotations

from manyview.lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
__all__ = ["__version__", *__all__]
