"""manyview-clip registers the CLIP image tower beside manyview-text's text tower, both with
the pair builder as metadata, and listing imports neither torch nor open_clip."""

from __future__ import annotations

import json

import manyview


def test_registered_with_the_pair_as_metadata():
    (info,) = [p for p in manyview.plugins() if p.distribution == "manyview-clip"]
    assert info.status == "loaded" and info.name == "clip", info.error
    assert info.registered["encoder"] == ["open_clip_image"]
    image, text = (manyview.entry("encoder", n) for n in ("open_clip_image", "open_clip_text"))
    assert (image.plugin, image.modality) == ("manyview-clip", "image")
    assert (text.plugin, text.modality) == ("manyview-text", "text")
    assert image.meta["clip_pair"] == text.meta["clip_pair"] == "manyview_clip.pair:open_clip_pair"


def test_lazy_public_names():
    import manyview_clip

    assert manyview_clip.open_clip_pair.__name__ == "open_clip_pair"
    assert {"OpenCLIPImage", "OpenCLIPPair", "open_clip_pair"} <= set(dir(manyview_clip))


def test_listing_imports_neither_torch_nor_open_clip(run_python):
    code = (
        "import sys\n"
        "from manyview.cli import main\n"
        "main(['list', 'encoder', '--json'])\n"
        "import manyview_clip, manyview_clip.plugin\n"
        "print('HEAVY', [m for m in ('torch', 'open_clip') if m in sys.modules], file=sys.stderr)\n"
    )
    result = run_python("-c", code)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stderr
    listed = {row["name"]: row for row in json.loads(result.stdout)}
    assert listed["open_clip_image"]["plugin"] == "manyview-clip"
    assert listed["open_clip_image"]["modality"] == "image"
