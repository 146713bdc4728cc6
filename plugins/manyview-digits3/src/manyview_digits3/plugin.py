"""Registers manyview-digits3's entries (entry-point group ``manyview``).

Factories are ``"module:attr"`` strings, so ``manyview list`` and ``manyview plugins`` import
no torch. Each table maps a registered name to its factory and summary
(:func:`manyview.register_all`).
"""

from __future__ import annotations

from typing import Any

import manyview

DATASETS = {
    "digits3": {
        "factory": "manyview_digits3.datasets.digits3:Digits3",
        "summary": "Digits as images, eSpeak NG speech and text, built offline and cached",
        "modalities": "image,audio,text",
    },
}
"""The tri-modal digits dataset."""

CONFIGS = {
    "digits3-mv_infonce": (
        "manyview_digits3.configs:mv_infonce",
        "digits3: image + speech + text through one mv_infonce call (the demo)",
    ),
    "digits3-mv_dhel": (
        "manyview_digits3.configs:mv_dhel",
        "digits3: image + speech + text through one mv_dhel call",
    ),
    "digits3-pwe": (
        "manyview_digits3.configs:pwe",
        "digits3: NT-Xent averaged over the three modality pairs (PWE)",
    ),
    "digits3-clip": (
        "manyview_digits3.configs:clip",
        "digits3: CLIP averaged over the three modality pairs",
    ),
    "demo": (
        "manyview_digits3.configs:mv_infonce",
        "The tri-modal digits demo that `manyview demo` trains",
    ),
}
"""The run configurations on digits3, ``demo`` among them (functions of
:mod:`manyview_digits3.configs` that return a TOML file's path)."""


@manyview.hookimpl
def manyview_register_datasets(register: Any) -> None:
    manyview.register_all(register, DATASETS)


@manyview.hookimpl
def manyview_register_configs(register: Any) -> None:
    manyview.register_all(register, CONFIGS)
