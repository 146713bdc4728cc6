"""manyview-text: the manyview modality plugin for text: the open_clip tokenizer and text
tower, text views, prompts.

Importing ``manyview_text`` does not import torch or open_clip; the names below load their
module when first used.

>>> from manyview_text import open_clip_pair  # doctest: +SKIP
>>> pair = open_clip_pair("tiny")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "CONFIGS": "manyview_text.models",
    "build_clip": "manyview_text.models",
    "model_config": "manyview_text.models",
    "Tokenizer": "manyview_text.tokenizer",
    "OpenCLIPText": "manyview_text.text_encoder",
    "TransformerDropout": "manyview_text.text_encoder",
    "OpenCLIPImage": "manyview_text.image_encoder",
    "OpenCLIPPair": "manyview_text.clip",
    "open_clip_pair": "manyview_text.clip",
    "SimCSE": "manyview_text.views",
    "SpanSwap": "manyview_text.views",
    "TokenMask": "manyview_text.views",
    "WordDeletion": "manyview_text.views",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'manyview_text' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
