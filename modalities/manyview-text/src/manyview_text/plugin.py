"""Registers manyview-text's entries (entry-point group ``manyview``)."""

from __future__ import annotations

from typing import Any

import manyview


@manyview.hookimpl
def manyview_register_encoders(register: Any) -> None:
    """Encoders of this modality (filled in by the plugin's modules)."""


@manyview.hookimpl
def manyview_register_views(register: Any) -> None:
    """Views of this modality (filled in by the plugin's modules)."""
