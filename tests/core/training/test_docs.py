"""docs/training.md documents every configuration key, and every registered configuration
is valid."""

from __future__ import annotations

from pathlib import Path

import manyview
from manyview.config import MODALITY, SECTIONS, load_config

ROOT = Path(__file__).resolve().parents[3]


def test_every_config_key_is_documented():
    doc = (ROOT / "docs" / "training.md").read_text()
    for section, schema in {**SECTIONS, "modalities.<name>": MODALITY}.items():
        assert f"[{section}]" in doc, f"docs/training.md lacks the [{section}] table"
        for key in schema:
            assert f"| `{key}` |" in doc, f"docs/training.md does not document {section}.{key}"


def test_registered_configs_validate():
    names = manyview.available("config")
    assert "quickstart" in names
    for name in names:
        load_config(manyview.create("config", name))
