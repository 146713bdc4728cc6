"""The helpers datasets of user files share (manyview.datasets.files, .columns)."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import default_collate

from manyview.datasets.columns import ColumnDataset
from manyview.datasets.files import (
    DataFileError,
    class_files,
    class_ids,
    skip_or_raise,
    warn_skipped,
)


def test_class_files_by_folder_sorted_and_empty_folders_reported(tmp_path):
    for rel in ("b/2.PNG", "a/1.png", "a/deep/3.png", "a/notes.txt", "loose.png", ".hidden/4.png"):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    (tmp_path / "c").mkdir()
    found, empty = class_files(tmp_path, (".png",))
    assert [(p.relative_to(tmp_path).as_posix(), c) for p, c in found] == [
        ("a/1.png", "a"),
        ("a/deep/3.png", "a"),
        ("b/2.PNG", "b"),
    ]
    assert empty == [tmp_path / "c"]
    found, _ = class_files(tmp_path, (".png",), loose_class="misc")
    assert (tmp_path / "loose.png", "misc") in found
    assert class_ids(["dog", "cat", "dog"])[0] == ["cat", "dog"]
    assert class_ids(["dog", "cat", "dog"])[1].tolist() == [1, 0, 1]


def test_skip_or_raise_and_one_warning():
    skipped: list = []
    skip_or_raise(skipped, "x.png", "truncated", "skip", "imagefolder")
    assert skipped == [("x.png", "truncated")]
    with pytest.raises(DataFileError, match=r"^imagefolder: truncated$"):
        skip_or_raise(skipped, "x.png", "truncated", "raise", "imagefolder")
    with pytest.raises(DataFileError, match=r"^x.png: truncated$"):
        skip_or_raise(skipped, "x.png", "x.png: truncated", "raise", None)
    with pytest.warns(UserWarning, match=r"imagefolder: skipped 1 of 3 files \(first: truncated\)"):
        warn_skipped(skipped, "imagefolder", "of 3 files")
    warn_skipped([], "imagefolder", "of 3 files")  # nothing skipped: no warning


def test_column_dataset_items_and_batches_agree():
    class Columns(ColumnDataset):
        def __init__(self):
            self.data = {"x": torch.arange(6.0).reshape(3, 2), "t": ["a", "b", "c"]}
            self.labels = torch.tensor([2, 0, 1])

    ds = Columns()
    item = ds[1]
    assert len(ds) == 3 and torch.equal(item.pop("x"), ds.data["x"][1])
    assert item == {"t": "b", "label": 0, "index": 1}
    batch, want = ds.get_batch([2, 0]), default_collate([ds[2], ds[0]])
    assert batch["t"] == ["c", "a"] == list(want["t"])
    assert torch.equal(batch["x"], want["x"]) and torch.equal(batch["label"], want["label"])
    assert torch.equal(batch["index"], torch.tensor([2, 0]))
