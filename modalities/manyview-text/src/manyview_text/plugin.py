"""Registers manyview-text's entries (entry-point group ``manyview``).

Factories are ``"module:Attr"`` strings, so ``manyview list`` imports neither torch nor
open_clip.
"""

from __future__ import annotations

from typing import Any

import manyview

PAIR = "manyview_clip.pair:open_clip_pair"
"""Builds one open_clip model and both encoders on it: the metadata ``clip_pair`` of
``open_clip_text`` and of ``open_clip_image``. The pair and the image tower are
manyview-clip's (``pip install manyview-clip``)."""

ENCODERS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "open_clip_text": (
        "manyview_text.encoders.open_clip_text:OpenCLIPText",
        "open_clip text transformer and BPE tokenizer: strings to (N, F); any open_clip config",
        {"clip_pair": PAIR},
    ),
    "char_ngram": (
        "manyview_text.encoders.char_ngram:CharNgramEncoder",
        "Learned bag of hashed character n-grams of short texts (audio-text training)",
        {},
    ),
}
"""Registered name -> (factory, summary, metadata); every one has modality ``text``."""

VIEWS: dict[str, tuple[str, str]] = {
    "simcse": (
        "manyview_text.views.simcse:SimCSE",
        "SimCSE: sentences unchanged, the encoder's dropout makes the views (set dropout)",
    ),
    "token_mask": (
        "manyview_text.views.token_mask:TokenMask",
        "Replace each word with a mask token with probability p",
    ),
    "word_deletion": (
        "manyview_text.views.word_deletion:WordDeletion",
        "Delete each word with probability p, keeping at least one (EDA)",
    ),
    "span_swap": (
        "manyview_text.views.span_swap:SpanSwap",
        "Swap two non-overlapping spans of words (EDA random swap, for spans)",
    ),
}


@manyview.hookimpl
def manyview_register_encoders(register: Any) -> None:
    for name, (factory, summary, meta) in ENCODERS.items():
        register(name, factory, summary=summary, modality="text", **meta)


@manyview.hookimpl
def manyview_register_views(register: Any) -> None:
    for name, (factory, summary) in VIEWS.items():
        register(name, factory, summary=summary, modality="text")
