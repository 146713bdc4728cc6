"""Registers manyview-text's entries (entry-point group ``manyview``).

Factories are ``"module:Attr"`` strings, so ``manyview list`` imports neither torch nor
open_clip.
"""

from __future__ import annotations

from typing import Any

import manyview

PAIR = "manyview_text.clip:open_clip_pair"
"""Builds one open_clip model and both encoders on it (metadata ``clip_pair`` of both)."""

ENCODERS: dict[str, tuple[str, str, str]] = {
    "open_clip_text": (
        "manyview_text.text_encoder:OpenCLIPText",
        "open_clip text transformer and BPE tokenizer: strings to (N, F); any open_clip config",
        "text",
    ),
    "open_clip_image": (
        "manyview_text.image_encoder:OpenCLIPImage",
        "open_clip image tower of the same CLIP configs, the partner of open_clip_text",
        "image",
    ),
}

VIEWS: dict[str, tuple[str, str]] = {
    "simcse": (
        "manyview_text.views:SimCSE",
        "SimCSE: sentences unchanged, the encoder's dropout makes the views (set dropout)",
    ),
    "token_mask": (
        "manyview_text.views:TokenMask",
        "Replace each word with a mask token with probability p",
    ),
    "word_deletion": (
        "manyview_text.views:WordDeletion",
        "Delete each word with probability p, keeping at least one (EDA)",
    ),
    "span_swap": (
        "manyview_text.views:SpanSwap",
        "Swap two non-overlapping spans of words (EDA random swap, for spans)",
    ),
}


@manyview.hookimpl
def manyview_register_encoders(register: Any) -> None:
    for name, (factory, summary, modality) in ENCODERS.items():
        register(name, factory, summary=summary, modality=modality, clip_pair=PAIR)


@manyview.hookimpl
def manyview_register_views(register: Any) -> None:
    for name, (factory, summary) in VIEWS.items():
        register(name, factory, summary=summary, modality="text")
