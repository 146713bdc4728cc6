"""Registers manyview-text's entries (entry-point group ``manyview``).

Factories are ``"module:Attr"`` strings, so ``manyview list`` imports neither torch nor
open_clip. Each table maps a registered name to its factory and summary
(:func:`manyview.register_all`).
"""

from __future__ import annotations

from typing import Any

import manyview

PAIR = "manyview_clip.pair:open_clip_pair"
"""Builds one open_clip model and both encoders on it: the metadata ``clip_pair`` of
``open_clip_text`` and of ``open_clip_image``. The pair and the image tower are
manyview-clip's (``pip install manyview-clip``)."""

ENCODERS = {
    "open_clip_text": {
        "factory": "manyview_text.encoders.open_clip_text:OpenCLIPText",
        "summary": "open_clip text transformer and BPE tokenizer: strings to (N, F); any open_clip config",
        "clip_pair": PAIR,
    },
    "char_ngram": (
        "manyview_text.encoders.char_ngram:CharNgramEncoder",
        "Learned bag of hashed character n-grams of short texts (audio-text training)",
    ),
}
"""The open_clip text tower and a character n-gram encoder (text)."""

VIEWS = {
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
"""Masking, deletion and span swaps of words, and SimCSE's dropout views (text)."""


@manyview.hookimpl
def manyview_register_encoders(register: Any) -> None:
    manyview.register_all(register, ENCODERS, modality="text")


@manyview.hookimpl
def manyview_register_views(register: Any) -> None:
    manyview.register_all(register, VIEWS, modality="text")
