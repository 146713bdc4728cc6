"""The core's ``image`` reader: Pillow files to float32 (C, H, W), its options and errors,
and the lookup of a reader that no installed plugin registers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import manyview
from manyview.datasets.files import IMAGE_EXTENSIONS, DataFileError
from manyview.readers import ReaderNotFoundError, get_reader
from manyview.readers.image import ImageReader


def _png(path, size=(6, 4)):
    pixels = np.arange(size[0] * size[1] * 3, dtype=np.uint8).reshape(size[1], size[0], 3)
    Image.fromarray(pixels, mode="RGB").save(path)
    return torch.from_numpy(pixels).permute(2, 0, 1).float() / 255.0


def test_registered_with_its_modality_and_suffixes():
    entry = manyview.entry("reader", "image")
    assert entry.plugin == "manyview" and entry.modality == "image" and entry.summary
    assert entry.meta["suffixes"] == IMAGE_EXTENSIONS == ImageReader.suffixes


def test_reads_rgb_grey_and_resized(tmp_path):
    want = _png(tmp_path / "a.png")
    read = manyview.create("reader", "image")
    assert isinstance(read, ImageReader)
    got = read(tmp_path / "a.png")
    assert got.dtype == torch.float32 and got.shape == (3, 4, 6)
    assert torch.allclose(got, want)
    assert get_reader("image", mode="L")(str(tmp_path / "a.png")).shape == (1, 4, 6)
    assert get_reader("image", size=3)(tmp_path / "a.png").shape == (3, 3, 3)
    assert get_reader("image", mode="RGBA", size=(2, 5))(tmp_path / "a.png").shape == (4, 2, 5)


def test_bad_files_name_the_file(tmp_path):
    read = ImageReader()
    with pytest.raises(FileNotFoundError, match="no such image file"):
        read(tmp_path / "none.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(DataFileError, match=r"empty\.png.*empty"):
        read(tmp_path / "empty.png")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(DataFileError, match=r"bad\.png.*corrupt"):
        read(tmp_path / "bad.png")
    with pytest.raises(DataFileError, match="folder"):
        read(tmp_path)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"mode": "XYZ"}, "mode must be one of"),
        ({"size": 0}, "image_size"),
        ({"size": (2,)}, "image_size"),
    ],
)
def test_bad_options(options, match):
    with pytest.raises(ValueError, match=match):
        manyview.create("reader", "image", **options)
    with pytest.raises(TypeError, match="unexpected argument 'sample_rate'"):
        manyview.create("reader", "image", sample_rate=16000)


def test_a_reader_nobody_registers_names_what_to_install(monkeypatch, fresh_plugins):
    with pytest.raises(ReaderNotFoundError, match=r"^video: .*video files; install a plugin"):
        get_reader("video", who="video")
    monkeypatch.setenv("MANYVIEW_DISABLE_PLUGINS", "manyview-speech")
    manyview.manager.reload()
    with pytest.raises(ReaderNotFoundError) as caught:
        get_reader("audio", sample_rate=16000)
    assert str(caught.value) == (
        "reader: no installed plugin registers a reader for audio files; "
        "install manyview-speech (pip install manyview-speech)"
    )


def _lines_reader(*, encoding: str = "utf-8"):
    """A reader factory: options in, a callable ``path -> data`` out."""
    return lambda path: Path(path).read_text(encoding=encoding).splitlines()


def test_a_plugin_registers_a_reader(fresh_plugins, tmp_path):
    class Plugin:
        @manyview.hookimpl
        def manyview_register_readers(self, register):
            register("lines", _lines_reader, modality="lines", suffixes=(".txt",))

    info = manyview.manager.register_plugin(Plugin(), name="lines")
    assert info.status == "loaded", info.error
    (tmp_path / "r.txt").write_text("a\nb\n")
    assert get_reader("lines", encoding="ascii")(tmp_path / "r.txt") == ["a", "b"]
    assert manyview.entry("reader", "lines").meta["suffixes"] == (".txt",)
