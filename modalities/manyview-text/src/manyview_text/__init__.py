"""manyview-text: the manyview modality plugin for text: the open_clip tokenizer and text
tower, a character n-gram encoder, text views, prompts.

Importing ``manyview_text`` does not import torch or open_clip; the names below load their
module when first used. CLIP's image tower and the image-text pair are manyview-clip's
(``manyview_clip``).

>>> from manyview_text import OpenCLIPText  # doctest: +SKIP
>>> encoder = OpenCLIPText("tiny")  # doctest: +SKIP
"""

from __future__ import annotations

from manyview.lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "CONFIGS": "manyview_text.models",
    "build_clip": "manyview_text.models",
    "model_config": "manyview_text.models",
    "Tokenizer": "manyview_text.tokenizer",
    "OpenCLIPText": "manyview_text.encoders.open_clip_text",
    "TransformerDropout": "manyview_text.encoders.open_clip_text",
    "CharNgramEncoder": "manyview_text.encoders.char_ngram",
    "SimCSE": "manyview_text.views.simcse",
    "SpanSwap": "manyview_text.views.span_swap",
    "TokenMask": "manyview_text.views.token_mask",
    "WordDeletion": "manyview_text.views.word_deletion",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
__all__ = ["__version__", *__all__]
