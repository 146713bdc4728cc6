"""Registers manyview-digits3's entries (entry-point group ``manyview``).

Factories are ``"module:attr"`` strings, so ``manyview list`` and ``manyview plugins`` import
no torch.
"""

from __future__ import annotations

from typing import Any

import manyview

CONFIGS: dict[str, tuple[str, str]] = {
    "digits3-mv_infonce": (
        "mv_infonce",
        "digits3: image + speech + text through one mv_infonce call (the demo)",
    ),
    "digits3-mv_dhel": ("mv_dhel", "digits3: image + speech + text through one mv_dhel call"),
    "digits3-pwe": ("pwe", "digits3: NT-Xent averaged over the three modality pairs (PWE)"),
    "digits3-clip": ("clip", "digits3: CLIP averaged over the three modality pairs"),
    "demo": ("mv_infonce", "The tri-modal digits demo that `manyview demo` trains"),
}
"""Registered name -> (function of :mod:`manyview_digits3.configs`, summary)."""


@manyview.hookimpl
def manyview_register_datasets(register: Any) -> None:
    register(
        "digits3",
        "manyview_digits3.datasets.digits3:Digits3",
        summary="Digits as images, eSpeak NG speech and text, built offline and cached",
        modalities="image,audio,text",
    )


@manyview.hookimpl
def manyview_register_configs(register: Any) -> None:
    for name, (function, summary) in CONFIGS.items():
        register(name, f"manyview_digits3.configs:{function}", summary=summary)
