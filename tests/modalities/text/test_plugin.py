"""The plugin registers its entries with modality text and stays light: listing imports
neither torch nor open_clip."""

from __future__ import annotations

import json

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


def test_manyview_list_shows_the_entries_without_importing_torch(run_python):
    code = (
        "import sys\n"
        "from manyview.cli import main\n"
        "main(['list', 'encoder', '--json'])\n"
        "main(['list', 'view', '--json'])\n"
        "import manyview_text, manyview_text.plugin\n"
        "heavy = [m for m in ('torch', 'open_clip') if m in sys.modules]\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    result = run_python("-c", code)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stderr
    decoder = json.JSONDecoder()
    text, rows, pos = result.stdout, [], 0
    while pos < len(text.rstrip()):
        value, end = decoder.raw_decode(text, pos)
        rows.extend(value)
        pos = end
        while pos < len(text) and text[pos].isspace():
            pos += 1
    listed = {r["name"]: r.get("modality") for r in rows}
    for name, modality in {**ENCODERS, **dict.fromkeys(VIEWS, "text")}.items():
        assert listed.get(name) == modality, (name, listed)


def test_lazy_public_names():
    import manyview_text

    assert manyview_text.OpenCLIPText.__name__ == "OpenCLIPText"
    assert manyview_text.CharNgramEncoder.__name__ == "CharNgramEncoder"
    assert "OpenCLIPText" in dir(manyview_text)
    assert "open_clip_pair" not in dir(manyview_text)  # manyview-clip's (manyview_clip)
