"""The digits3 run configurations, shipped as TOML files next to this module.

Each function returns its file's path (the registry kind ``config``):
``manyview train digits3-mv_dhel`` trains one, ``manyview list config`` lists them, and
``demo`` (what ``manyview demo`` trains) is :func:`mv_infonce`. Override keys with
``--set`` (``manyview train digits3-mv_dhel --set run.steps=100``), or copy the file that a
function returns and edit it.
"""

from __future__ import annotations

from pathlib import Path

from manyview.configs import packaged_file

__all__ = ["clip", "mv_dhel", "mv_infonce", "pwe"]


def mv_infonce() -> Path:
    """digits3, image + speech + text through one multi-view InfoNCE call (the demo)."""
    return packaged_file(__name__, "digits3-mv_infonce.toml")


def mv_dhel() -> Path:
    """digits3, image + speech + text through one MV-DHEL call."""
    return packaged_file(__name__, "digits3-mv_dhel.toml")


def pwe() -> Path:
    """digits3, NT-Xent averaged over the three modality pairs (the PWE baseline)."""
    return packaged_file(__name__, "digits3-pwe.toml")


def clip() -> Path:
    """digits3, the CLIP loss averaged over the three modality pairs."""
    return packaged_file(__name__, "digits3-clip.toml")
