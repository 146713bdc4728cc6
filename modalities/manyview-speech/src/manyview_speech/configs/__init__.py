"""manyview-speech's run configurations, shipped as TOML files next to this module.

Each function returns its file's path (the registry kind ``config``):
``manyview train spoken_words_supcon`` trains one, ``manyview list config`` lists them.
"""

from __future__ import annotations

from pathlib import Path

from manyview.configs import packaged_file

__all__ = ["spoken_words_supcon"]


def spoken_words_supcon() -> Path:
    """SupCon pre-training for spoken-word recognition that transfers to unseen voices."""
    return packaged_file(__name__, "spoken_words_supcon.toml")
