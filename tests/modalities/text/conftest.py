"""Fixtures of the manyview-text tests: tiny open_clip models, built offline."""

from __future__ import annotations

import pytest


@pytest.fixture
def text_encoder():
    """The default ``open_clip_text`` (tiny, random init) from a fixed seed."""
    import torch

    import manyview

    torch.manual_seed(0)
    return manyview.create("encoder", "open_clip_text")
