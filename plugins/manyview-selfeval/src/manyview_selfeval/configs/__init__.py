"""manyview-selfeval's run configurations on digits3, shipped as TOML files next to this
module.

Each function returns its file's path (the registry kind ``config``): ``manyview train
self_e`` trains one, ``manyview list config`` lists them. Override keys with ``--set``
(``manyview train self_e --set run.steps=100``), or copy the file a function returns.
"""

from __future__ import annotations

from pathlib import Path

from manyview.configs import packaged_file

__all__ = ["flow_matching", "self_e"]


def self_e() -> Path:
    """Self-E on digits3: a tiny UNet generating a digit from its prompt in any steps."""
    return packaged_file(__name__, "self_e.toml")


def flow_matching() -> Path:
    """Flow matching on digits3 with the self_e configuration's budget."""
    return packaged_file(__name__, "flow_matching.toml")
