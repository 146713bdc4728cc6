"""manyview.register_all: a registration table in one call, every row form, shared metadata,
malformed rows, a plugin built on it, and the example of docs/plugins.md. (That importing
manyview imports no torch is checked in test_lazy.py.)"""

from __future__ import annotations

import re
import types
from pathlib import Path
from typing import Any

import pytest

import manyview
from manyview import manager

DOC = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


def _calls(table: dict[str, Any], **common: Any) -> list[tuple[str, Any, dict[str, Any]]]:
    """The ``register(name, factory, **meta)`` calls ``register_all`` makes, in order."""
    seen: list[tuple[str, Any, dict[str, Any]]] = []
    manyview.register_all(
        lambda name, factory, **meta: seen.append((name, factory, meta)), table, **common
    )
    return seen


def test_every_row_form_becomes_one_register_call_in_order():
    def factory() -> None:
        """From the docstring."""

    table = {
        "plain": "pkg.mod:Plain",
        "callable": factory,
        "pair": ("pkg.mod:Pair", "A pair's summary"),
        "keywords": {"factory": "pkg.mod:Flac", "summary": "FLAC", "suffixes": (".flac",)},
    }
    assert _calls(table) == [
        ("plain", "pkg.mod:Plain", {}),
        ("callable", factory, {}),
        ("pair", "pkg.mod:Pair", {"summary": "A pair's summary"}),
        ("keywords", "pkg.mod:Flac", {"summary": "FLAC", "suffixes": (".flac",)}),
    ]
    assert table["keywords"] == {
        "factory": "pkg.mod:Flac",
        "summary": "FLAC",
        "suffixes": (".flac",),
    }


def test_common_metadata_goes_to_every_row_and_a_row_wins():
    table = {
        "a": ("pkg.mod:A", "a"),
        "b": {"factory": "pkg.mod:B", "modality": "vector", "views_per_call": 2},
    }
    assert _calls(table, modality="image") == [
        ("a", "pkg.mod:A", {"modality": "image", "summary": "a"}),
        ("b", "pkg.mod:B", {"modality": "vector", "views_per_call": 2}),
    ]
    assert _calls({}, modality="image") == []


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"summary": "no factory"}, "row 'bad' is a dict without 'factory'"),
        (("pkg.mod:A",), r"row 'bad' must be \(factory, summary\)"),
        (("pkg.mod:A", "summary", "extra"), r"row 'bad' must be \(factory, summary\)"),
    ],
)
def test_a_malformed_row_is_named(row, message):
    with pytest.raises(ValueError, match=message):
        _calls({"bad": row})


def test_a_plugin_of_tables_registers_like_explicit_calls(fresh_plugins):
    views = {
        "table_flip": ("pkg.views:Flip", "Mirror left-right"),
        "table_set": {"factory": "pkg.views:two", "summary": "Two views", "views_per_call": 2},
    }

    class Tables:
        @manyview.hookimpl
        def manyview_register_views(self, register):
            manyview.register_all(register, views, modality="image")

    class Explicit:
        @manyview.hookimpl
        def manyview_register_views(self, register):
            register("table_flip", "pkg.views:Flip", summary="Mirror left-right", modality="image")
            register(
                "table_set",
                "pkg.views:two",
                summary="Two views",
                modality="image",
                views_per_call=2,
            )

    tables = manager.register_plugin(Tables(), name="tables", distribution="dist-tables")
    manager.unregister_plugin("tables")
    explicit = manager.register_plugin(Explicit(), name="explicit", distribution="dist-tables")
    assert tables.status == explicit.status == "loaded"
    assert tables.entries == explicit.entries
    assert manyview.entry("view", "table_set").meta == {"views_per_call": 2}


def test_a_row_register_refuses_fails_the_plugin_alone(fresh_plugins):
    class NoModality:
        @manyview.hookimpl
        def manyview_register_views(self, register):
            manyview.register_all(register, {"table_ok": "pkg.views:Ok"}, modality="image")
            manyview.register_all(register, {"table_bad": "pkg.views:Bad"})

    info = manager.register_plugin(NoModality(), name="no-modality")
    assert info.status == "failed" and "must name its modality" in info.error
    assert "table_ok" not in manyview.available("view")


def test_the_documented_example_registers(fresh_plugins):
    block = re.search(r"<!-- example: register_all -->\n```python\n(.*?)```", DOC.read_text(), re.S)
    assert block, "docs/plugins.md lost its register_all example block"
    module = types.ModuleType("my_plugin.plugin")
    exec(compile(block.group(1), str(DOC), "exec"), module.__dict__)
    info = manager.register_plugin(module, name="docs-example", distribution="my-plugin")
    assert info.status == "loaded", info.error
    assert info.registered == {"view": ["my_crop", "my_noise"], "reader": ["my_flac"]}
    flac = manyview.entry("reader", "my_flac")
    assert (flac.factory, flac.modality, flac.summary) == (
        "my_plugin.readers:FlacReader",
        "audio",
        "FLAC files to waveforms",
    )
    assert flac.meta == {"suffixes": (".flac",)}
    assert manyview.entry("view", "my_noise").modality == "audio"
