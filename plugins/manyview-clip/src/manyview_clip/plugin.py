"""Registers manyview-clip's entries (entry-point group ``manyview``).

Factories are ``"module:Attr"`` strings, so ``manyview list`` imports neither torch nor
open_clip.
"""

from __future__ import annotations

from typing import Any

import manyview

PAIR = "manyview_clip.pair:open_clip_pair"
"""Builds one open_clip model and both encoders on it (metadata ``clip_pair`` of
``open_clip_image`` here and of manyview-text's ``open_clip_text``)."""

ENCODERS = {
    "open_clip_image": {
        "factory": "manyview_clip.encoders.open_clip_image:OpenCLIPImage",
        "summary": "open_clip image tower of the same CLIP configs, the partner of open_clip_text",
        "clip_pair": PAIR,
    },
}
"""The CLIP image tower (image); :func:`manyview.register_all` registers it."""


@manyview.hookimpl
def manyview_register_encoders(register: Any) -> None:
    manyview.register_all(register, ENCODERS, modality="image")
