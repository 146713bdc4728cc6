"""manyview-clip registers the CLIP image tower beside manyview-text's text tower, both with
the pair builder as metadata, and listing imports neither torch nor open_clip."""

from __future__ import annotations

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


def test_listing_imports_neither_torch_nor_open_clip(fresh_cli):
    result = fresh_cli(
        ["list", "encoder", "--json"],
        imports=("manyview_clip", "manyview_clip.plugin"),
        heavy=("torch", "open_clip"),
    )
    assert result.returncode == 0, result.stderr
    assert result.heavy == []
    listed = {row["name"]: row for row in result.rows()}
    assert listed["open_clip_image"]["plugin"] == "manyview-clip"
    assert listed["open_clip_image"]["modality"] == "image"
