"""manyview-clip: the CLIP image-text pair model as manyview encoders.

The image tower ``open_clip_image`` and :func:`open_clip_pair` (one open_clip CLIP model
with both towers as encoders) live here; the text tower ``open_clip_text``, the BPE
tokenizer and :func:`manyview_text.build_clip` are manyview-text's, which this package
depends on.

Importing ``manyview_clip`` does not import torch or open_clip; the names below load their
module when first used.

>>> from manyview_clip import open_clip_pair  # doctest: +SKIP
>>> pair = open_clip_pair("tiny")  # doctest: +SKIP
"""

from __future__ import annotations

from manyview.lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "OpenCLIPImage": "manyview_clip.encoders.open_clip_image",
    "OpenCLIPPair": "manyview_clip.pair",
    "open_clip_pair": "manyview_clip.pair",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
__all__ = ["__version__", *__all__]
