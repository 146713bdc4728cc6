"""The ``digits`` dataset: scikit-learn's real digits as images."""

from __future__ import annotations

import pytest
import torch

import manyview
from manyview.datasets.digits import Digits, digit_images
from manyview.testing import DatasetContractTests

SMALL = {"size": 16, "channels": 3, "limit": 40}


class TestDigitsContract(DatasetContractTests):
    name = "digits"
    kwargs = SMALL


def test_splits_are_disjoint_stratified_and_cover_every_digit():
    train, test, everything = Digits("train"), Digits("test"), Digits("all")
    assert len(train) + len(test) == len(everything) == 1797
    train_idx, test_idx = set(train.source_index.tolist()), set(test.source_index.tolist())
    assert not train_idx & test_idx and len(train_idx | test_idx) == 1797
    counts = torch.bincount(test.labels, minlength=10)
    assert counts.min() >= 30 and counts.sum() == len(test)


def test_images_match_sklearn_and_resize_keeps_the_range():
    from sklearn.datasets import load_digits

    images, labels = digit_images(8)
    raw = load_digits()
    torch.testing.assert_close(images[:, 0] * 16, torch.as_tensor(raw.images, dtype=torch.float32))
    assert torch.equal(labels, torch.as_tensor(raw.target))
    big = Digits("test", size=16, channels=3)
    assert big[0]["image"].shape == (3, 16, 16)
    assert big.images.min() >= 0 and big.images.max() <= 1
    assert torch.equal(big.images[:, 0], big.images[:, 2])


def test_a_prefix_is_class_balanced_and_building_twice_is_identical():
    d = Digits("train", limit=50)
    assert torch.bincount(d.labels, minlength=10).tolist() == [5] * 10
    assert torch.equal(Digits("train").images, Digits("train").images)
    assert not torch.equal(Digits("train", seed=1).images, Digits("train").images)


def test_get_batch_equals_collated_samples():
    from torch.utils.data import default_collate

    d = Digits("test", size=16)
    batch, want = d.get_batch([3, 0, 7]), default_collate([d[3], d[0], d[7]])
    assert batch.keys() == want.keys()
    for key in batch:
        assert torch.equal(batch[key], want[key])


def test_registered_with_class_names():
    d = manyview.create("dataset", "digits", split="test")
    assert len(d) == 359 and d.class_names[7] == "seven"


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"split": "val"}, "split"),
        ({"size": 0}, "size"),
        ({"test_fraction": 1.0}, "test_fraction"),
        ({"channels": 2.5}, "channels"),
    ],
)
def test_bad_options_are_one_line(options, match):
    with pytest.raises(ValueError, match=match) as info:
        Digits(**options)
    assert "\n" not in str(info.value)
