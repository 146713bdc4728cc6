"""The dataset protocol on the core's datasets (plugins' datasets run the same mixin)."""

from __future__ import annotations

import pytest
import torch

import manyview
from manyview.testing.datasets import DatasetContractTests, check_dataset


class TestSynthetic(DatasetContractTests):
    name = "synthetic"
    kwargs = {"modalities": {"a": 4, "image": [1, 4, 4], "caption": "text"}, "num_samples": 12}  # noqa: RUF012


class TestImageFolder(DatasetContractTests):
    name = "imagefolder"

    def make(self, tmp_path):
        from PIL import Image

        for label in ("cat", "dog"):
            (tmp_path / label).mkdir(exist_ok=True)
            for i in range(2):
                path = tmp_path / label / f"{i}.png"
                if not path.exists():
                    Image.new("RGB", (4, 4), (60 * i, 100, 200)).save(path)
        return manyview.create("dataset", "imagefolder", root=str(tmp_path))


class TestManifest(DatasetContractTests):
    name = "manifest"

    def make(self, tmp_path):
        from PIL import Image

        rows = ["image,text,label"]
        for i in range(4):
            Image.new("RGB", (4, 4), (50 * i, 100, 200)).save(tmp_path / f"{i}.png")
            rows.append(f"{i}.png,picture number {i},{i % 2}")
        (tmp_path / "pairs.csv").write_text("\n".join(rows) + "\n")
        return manyview.create("dataset", "manifest", path=str(tmp_path / "pairs.csv"))


def test_a_dataset_whose_get_batch_disagrees_is_caught():
    class Off:
        def __len__(self):
            return 3

        def __getitem__(self, i):
            return {"x": torch.full((2,), float(i)), "label": i, "index": i}

        def get_batch(self, indices):
            return {
                "x": torch.zeros(len(indices), 2),
                "label": torch.tensor(indices),
                "index": torch.tensor(indices),
            }

    with pytest.raises(AssertionError, match="get_batch's 'x' differs"):
        check_dataset(Off())
