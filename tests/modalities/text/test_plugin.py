"""The plugin registers its entries with modality text and stays light: listing imports
neither torch nor open_clip."""

from __future__ import annotations

import manyview

ENCODERS = {"open_clip_text": "text", "char_ngram": "text"}
VIEWS = ("simcse", "token_mask", "word_deletion", "span_swap")


def test_entries_are_registered_by_the_text_plugin():
    for name, modality in ENCODERS.items():
        entry = manyview.entry("encoder", name)
        assert entry.plugin == "manyview-text" and entry.modality == modality and entry.summary
    for name in VIEWS:
        entry = manyview.entry("view", name)
        assert entry.plugin == "manyview-text" and entry.modality == "text" and entry.summary


def test_manyview_list_shows_the_entries_without_importing_torch(fresh_cli):
    result = fresh_cli(
        ["list", "encoder", "--json"],
        ["list", "view", "--json"],
        imports=("manyview_text", "manyview_text.plugin"),
        heavy=("torch", "open_clip"),
    )
    assert result.returncode == 0, result.stderr
    assert result.heavy == []
    listed = {r["name"]: r.get("modality") for r in result.rows()}
    for name, modality in {**ENCODERS, **dict.fromkeys(VIEWS, "text")}.items():
        assert listed.get(name) == modality, (name, listed)


def test_lazy_public_names():
    import manyview_text

    assert manyview_text.OpenCLIPText.__name__ == "OpenCLIPText"
    assert manyview_text.CharNgramEncoder.__name__ == "CharNgramEncoder"
    assert "OpenCLIPText" in dir(manyview_text)
    assert "open_clip_pair" not in dir(manyview_text)  # manyview-clip's (manyview_clip)
