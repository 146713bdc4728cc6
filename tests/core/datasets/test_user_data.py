"""manifest and imagefolder: good inputs, and every kind of bad input with a clear error."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import manyview
from manyview.datasets.files import DataFileError
from manyview.datasets.imagefolder import ImageFolder
from manyview.datasets.manifest import Manifest
from manyview.readers import ReaderNotFoundError


def _png(path, value=0, size=(6, 4), mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    Image.fromarray(np.full(shape, value, dtype=np.uint8), mode=mode).save(path)
    return path


def _corrupt(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\nthis is not really a png")
    return path


# ---------------------------------------------------------------- imagefolder


def test_imagefolder_reads_classes_by_sorted_folder(tmp_path):
    _png(tmp_path / "dog" / "a.png", 255)
    _png(tmp_path / "cat" / "b.png", 0)
    _png(tmp_path / "cat" / "sub" / "c.jpg", 128)
    (tmp_path / "cat" / "notes.txt").write_text("ignored")
    ds = ImageFolder(tmp_path)
    assert ds.classes == ["cat", "dog"] and len(ds) == 3 and ds.num_skipped == 0
    item = ds[2]
    assert item["image"].shape == (3, 4, 6) and item["label"] == 1
    assert float(item["image"].max()) == 1.0
    batch = ds.get_batch([0, 2])
    assert batch["image"].shape == (2, 3, 4, 6) and batch["label"].tolist() == [0, 1]
    grey = ImageFolder(tmp_path, image_size=8, image_mode="L")
    assert grey[0]["image"].shape == (1, 8, 8)


def test_imagefolder_corrupt_image(tmp_path):
    _png(tmp_path / "a" / "ok.png")
    bad = _corrupt(tmp_path / "a" / "bad.png")
    (tmp_path / "a" / "empty.png").write_bytes(b"")
    with pytest.raises(DataFileError, match=r"bad\.png: cannot read image: corrupt"):
        ImageFolder(tmp_path, on_error="raise")
    with pytest.warns(UserWarning, match="skipped 2"):
        ds = ImageFolder(tmp_path)
    assert len(ds) == 1 and ds.num_skipped == 2
    reasons = dict(ds.skipped)
    assert "corrupt" in reasons[str(bad)]
    assert "empty (0 bytes)" in reasons[str(tmp_path / "a" / "empty.png")]


def test_imagefolder_empty_folders(tmp_path):
    with pytest.raises(ValueError, match="no class subfolders"):
        ImageFolder(tmp_path)
    (tmp_path / "cat").mkdir()
    with pytest.raises(ValueError, match=r"no .*png.* files in the class folders"):
        ImageFolder(tmp_path)
    _png(tmp_path / "dog" / "a.png")
    with pytest.raises(DataFileError, match="class folder 'cat' holds no"):
        ImageFolder(tmp_path, on_error="raise")
    with pytest.warns(UserWarning, match="skipped 1"):
        ds = ImageFolder(tmp_path)
    assert ds.classes == ["dog"] and ds.num_skipped == 1
    with pytest.raises(ValueError, match="is not a folder"):
        ImageFolder(tmp_path / "nowhere")


def test_imagefolder_sizes_must_agree_or_be_resized(tmp_path):
    _png(tmp_path / "a" / "x.png", size=(4, 4))
    _png(tmp_path / "a" / "y.png", size=(5, 4))
    with pytest.raises(ValueError, match=r"different sizes.*image_size"):
        ImageFolder(tmp_path)
    assert ImageFolder(tmp_path, image_size=(3, 2))[1]["image"].shape == (3, 3, 2)


def test_imagefolder_bad_options(tmp_path):
    with pytest.raises(ValueError, match="on_error"):
        ImageFolder(tmp_path, on_error="ignore")
    with pytest.raises(ValueError, match="image_size"):
        ImageFolder(tmp_path, image_size=0)


# ---------------------------------------------------------------- manifest


def _csv(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def test_manifest_csv_image_and_text(tmp_path):
    _png(tmp_path / "img" / "1.png", 10)
    _png(tmp_path / "img" / "2.png", 200)
    m = _csv(
        tmp_path / "pairs.csv",
        [
            "image,text,label",
            "img/1.png,a dark square,dark",
            'img/2.png,"a bright, light square",light',
        ],
    )
    ds = Manifest(m)
    assert (
        len(ds) == 2
        and ds.classes == ["dark", "light"]
        and ds.columns
        == {
            "image": "image",
            "text": "text",
        }
    )
    assert ds[1]["text"] == "a bright, light square" and ds[1]["label"] == 1
    assert ds[0]["image"].shape == (3, 4, 6)
    batch = ds.get_batch([1, 0])
    assert batch["text"] == ["a bright, light square", "a dark square"]
    assert batch["image"].shape == (2, 3, 4, 6) and batch["label"].tolist() == [1, 0]
    default = torch.utils.data.default_collate([ds[0], ds[1]])
    assert torch.equal(default["image"], ds.get_batch([0, 1])["image"])


def test_manifest_missing_file_names_its_line(tmp_path):
    _png(tmp_path / "1.png")
    m = _csv(tmp_path / "m.csv", ["image,label", "1.png,0", "2.png,1", "1.png,1"])
    with pytest.raises(DataFileError, match=r"m\.csv line 3: image file '2\.png' not found"):
        Manifest(m, on_error="raise")
    with pytest.warns(UserWarning, match="skipped 1 of 3 rows"):
        ds = Manifest(m)
    assert len(ds) == 2 and ds.num_skipped == 1 and ds.skipped[0][0] == 3
    assert ds.labels.tolist() == [0, 1] and ds.classes == ["0", "1"]


def test_manifest_ragged_row_and_corrupt_file(tmp_path):
    _png(tmp_path / "1.png")
    _corrupt(tmp_path / "bad.png")
    m = _csv(
        tmp_path / "m.csv",
        ["image,text", "1.png,one", "1.png,one,extra", "", "bad.png,two", "1.png"],
    )
    with pytest.raises(DataFileError, match=r"line 3: 3 fields where the header has 2 \(ragged"):
        Manifest(m, on_error="raise")
    with pytest.warns(UserWarning, match="skipped 3 of 4 rows"):
        ds = Manifest(m)
    assert [line for line, _ in ds.skipped] == [3, 5, 6]
    assert "corrupt" in ds.skipped[1][1] and "bad.png" in ds.skipped[1][1]
    assert (ds.labels == -1).all() and ds.num_classes == 0


def test_manifest_jsonl(tmp_path):
    _png(tmp_path / "a.png", size=(2, 2))
    rows = [
        {"image": "a.png", "text": "first", "label": "x"},
        "not json {",
        {"image": "a.png", "label": "y"},
        {"image": "missing.png", "text": "t", "label": "y"},
        [1, 2],
        {"image": "a.png", "text": "", "label": "y"},
        {"image": "a.png", "text": "last", "label": "y"},
    ]
    m = tmp_path / "m.jsonl"
    m.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    with pytest.raises(DataFileError, match="line 2: not valid JSON"):
        Manifest(m, on_error="raise")
    with pytest.warns(UserWarning, match="skipped 5 of 7"):
        ds = Manifest(m)
    assert [line for line, _ in ds.skipped] == [2, 3, 4, 5, 6]
    assert "no 'text' key" in ds.skipped[1][1] and "not found" in ds.skipped[2][1]
    assert "not a JSON object" in ds.skipped[3][1] and "empty" in ds.skipped[4][1]
    assert [ds[i]["text"] for i in range(len(ds))] == ["first", "last"]
    assert ds.labels.tolist() == [0, 1]


def test_manifest_audio_column(tmp_path):
    audio = pytest.importorskip("manyview_speech.audio")
    audio.write_audio(tmp_path / "a.wav", torch.zeros(8000) + 0.1, 8000)
    (tmp_path / "bad.wav").write_bytes(b"RIFF0000WAVEjunk")
    m = _csv(tmp_path / "m.csv", ["audio,text", "a.wav,hello", "bad.wav,oops"])
    with pytest.warns(UserWarning, match="skipped 1"):
        ds = Manifest(m, sample_rate=16000, clip_seconds=0.5)
    assert ds[0]["audio"].shape == (8000,) and ds.skipped[0][0] == 3
    with pytest.raises(DataFileError, match=r"line 3: .*bad\.wav"):
        Manifest(m, on_error="raise")


def test_manifest_audio_column_without_an_audio_reader(tmp_path, monkeypatch, fresh_plugins):
    monkeypatch.setenv("MANYVIEW_DISABLE_PLUGINS", "manyview-speech")
    manyview.manager.reload()
    assert "audio" not in manyview.available("reader")
    m = _csv(tmp_path / "m.csv", ["audio,text", "a.wav,hello"])
    with pytest.raises(ReaderNotFoundError) as caught:
        Manifest(m)
    message = str(caught.value)
    assert message.startswith("manifest: ") and "\n" not in message
    assert "audio files" in message and "pip install manyview-speech" in message
    _png(tmp_path / "a.png")
    images = _csv(tmp_path / "i.csv", ["image,text", "a.png,hello"])
    assert len(Manifest(images)) == 1  # the image reader is the core's own


def test_manifest_bad_setup(tmp_path):
    with pytest.raises(ValueError, match="is not a file"):
        Manifest(tmp_path / "none.csv")
    (tmp_path / "m.txt").write_text("x")
    with pytest.raises(ValueError, match=r"\.csv, \.jsonl"):
        Manifest(tmp_path / "m.txt")
    m = _csv(tmp_path / "m.csv", ["picture,label", "a.png,1"])
    with pytest.raises(ValueError, match="cannot tell what column 'picture' holds"):
        Manifest(m)
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(ValueError, match="empty"):
        Manifest(tmp_path / "e.csv")
    only_bad = _csv(tmp_path / "b.csv", ["image", "missing.png"])
    with pytest.raises(ValueError, match=r"no usable rows.*line 2"):
        Manifest(only_bad)
    _png(tmp_path / "a.png")
    ok = Manifest(m, modalities={"picture": "image"})
    assert ok.modalities == ("picture",) and len(ok) == 1


def test_registered():
    for name in ("manifest", "imagefolder"):
        assert name in manyview.available("dataset")


# ---------------------------------------------------------------- labels


def test_manifest_number_labels_are_mapped_not_used_as_a_range(tmp_path):
    # (kept small: with labels used as a range, 999999999 made a billion class names)
    m = _csv(tmp_path / "m.csv", ["text,label", "a,1000", "b,3", "c,1000", "d,07"])
    ds = Manifest(m)
    assert ds.classes == ["3", "7", "1000"] and ds.num_classes == 3
    assert ds.labels.tolist() == [2, 0, 2, 1]
    rows = [{"text": "a", "label": 12345}, {"text": "b", "label": 5.0}]
    j = tmp_path / "m.jsonl"
    j.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ds = Manifest(j)
    assert ds.classes == ["5", "12345"] and ds.labels.tolist() == [1, 0]


def test_manifest_names_and_numbers_together_are_names(tmp_path):
    ds = Manifest(_csv(tmp_path / "m.csv", ["text,label", "a,cat", "b,10", "c,9"]))
    assert ds.classes == ["10", "9", "cat"] and ds.labels.tolist() == [2, 0, 1]


@pytest.mark.parametrize(
    ("label", "why"),
    [
        ("-3", "is negative"),
        ("2147483648", "is out of range"),
        ("1e12", "is out of range"),
        ("9" * 5000, "is out of range"),
        ("1.5", "is not a whole number"),
    ],
)
def test_manifest_absurd_csv_labels_are_refused_with_file_and_line(tmp_path, label, why):
    m = _csv(tmp_path / "m.csv", ["text,label", "a,1", f"b,{label}", "c,2"])
    with pytest.raises(DataFileError) as caught:
        Manifest(m, on_error="raise")
    message = str(caught.value)
    assert "\n" not in message and "m.csv line 3: the 'label' value" in message
    assert why in message and "labels are class names or whole numbers from 0 to" in message
    with pytest.warns(UserWarning, match=r"skipped 1 of 3 rows.*line 3"):
        ds = Manifest(m)
    assert ds.classes == ["1", "2"] and ds.labels.tolist() == [0, 1]


@pytest.mark.parametrize(
    ("label", "why"),
    [
        (-1, "is negative"),
        (2**40, "is out of range"),
        (0.5, "is not a whole number"),
        (True, "not a class name or a whole number"),
        ([1], "not a class name or a whole number"),
    ],
)
def test_manifest_absurd_jsonl_labels_are_refused_with_file_and_line(tmp_path, label, why):
    m = tmp_path / "m.jsonl"
    rows = [{"text": "a", "label": 1}, {"text": "b", "label": label}]
    m.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataFileError, match=rf"m\.jsonl line 2: the 'label' value .*{why}"):
        Manifest(m, on_error="raise")


# ---------------------------------------------------------------- options and encodings


@pytest.mark.parametrize(
    ("mode", "hint"), [("rgb", "; did you mean 'RGB'?"), ("CMYK", ""), (3, "")]
)
def test_a_bad_image_mode_is_refused_before_any_file_is_read(tmp_path, mode, hint):
    _png(tmp_path / "imgs" / "a" / "x.png")
    m = _csv(tmp_path / "m.csv", ["text,label", "hello,1"])  # no image column at all
    for build, who in (
        (lambda: ImageFolder(tmp_path / "imgs", image_mode=mode), "imagefolder"),
        (lambda: Manifest(m, image_mode=mode), "manifest"),
    ):
        with pytest.raises(ValueError) as caught:
            build()
        message = str(caught.value)
        assert (
            message.startswith(f"{who}: unknown image_mode {mode!r}{hint}") and "\n" not in message
        )
        assert "(choose from 'RGB', 'L', 'RGBA', 'LA')" in message


def test_imagefolder_refuses_a_bare_string_of_extensions(tmp_path):
    _png(tmp_path / "a" / "x.png")
    with pytest.raises(
        ValueError, match=r"imagefolder: extensions must be a non-empty list .*'\.png'"
    ):
        ImageFolder(tmp_path, extensions=".png")
    with pytest.raises(ValueError, match=r"extensions must be file endings that start with '\.'"):
        ImageFolder(tmp_path, extensions=["png"])
    assert len(ImageFolder(tmp_path, extensions=[".PNG"])) == 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sample_rate": 0}, "manifest: sample_rate must be a positive int, got 0"),
        ({"sample_rate": 16000.5}, "sample_rate must be a positive int, got 16000.5"),
        ({"sample_rate": 10**9}, "sample_rate must be at most 768000 Hz"),
        ({"clip_seconds": -1}, "clip_seconds must be a positive finite number, got -1"),
        ({"clip_seconds": float("inf")}, "clip_seconds must be a positive finite number"),
        ({"clip_seconds": 1e7}, "clip_seconds must be at most 3600"),
        ({"label": 3}, "label must be a column name"),
        ({"modalities": ["image"]}, "modalities must map column names"),
    ],
)
def test_manifest_bad_options_are_one_line_errors(tmp_path, options, message):
    m = _csv(tmp_path / "m.csv", ["text,label", "hello,1"])
    with pytest.raises(ValueError) as caught:
        Manifest(m, **options)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_manifest_that_is_not_utf8_names_the_file_and_line(tmp_path):
    m = tmp_path / "latin1.csv"
    m.write_bytes("text,label\nhello,1\ncaf\u00e9,2\n".encode("latin-1"))
    with pytest.raises(ValueError) as caught:
        Manifest(m)
    message = str(caught.value)
    assert message.startswith(f"manifest: {m} line 3, column 4: byte 0xe9 is not UTF-8 text")
    assert "save the file with the UTF-8 encoding" in message and "\n" not in message
    j = tmp_path / "latin1.jsonl"
    j.write_bytes('{"text": "ok"}\n{"text": "caf\u00e9"}\n'.encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1\.jsonl line 2, column 14: byte 0xe9"):
        Manifest(j)


def test_a_manifest_with_a_utf8_byte_order_mark_is_read(tmp_path):
    _png(tmp_path / "a.png")
    m = tmp_path / "excel.csv"
    m.write_bytes("image,text,label\r\na.png,caf\u00e9,x\r\n".encode("utf-8-sig"))
    ds = Manifest(m)
    assert ds.modalities == ("image", "text") and ds[0]["text"] == "caf\u00e9"
    assert ds.classes == ["x"]
    j = tmp_path / "bom.jsonl"
    j.write_bytes('{"text": "hi", "label": 4}\n'.encode("utf-8-sig"))
    assert Manifest(j).classes == ["4"]
