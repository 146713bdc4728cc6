"""The spoken_words dataset: splits, labels, determinism."""

from __future__ import annotations

import pytest
import torch

import manyview
from manyview.testing import DatasetContractTests
from manyview_speech.datasets.spoken_words import SpokenWords

SMALL = {
    "words": ("yes", "no", "stop"),
    "dialects": ("en-us", "en-gb-scotland"),
    "variants": ("m1", "f3", "klatt"),
    "test_variants": 1,
    "clip_seconds": 0.6,
}


def test_voices_are_disjoint_between_splits():
    train, test = SpokenWords(**SMALL), SpokenWords(**SMALL, split="test")
    assert len(train) == 3 * 2 * 2 and len(test) == 3 * 2 * 1
    assert not set(train.speakers.tolist()) & set(test.speakers.tolist())
    assert train.audio.shape == (12, 9600) and train.audio.dtype == torch.float32
    item = train[0]
    assert item["text"] == "yes" and item["label"] == 0 and item["index"] == 0
    assert train.num_classes == 3 and train.classes == ["yes", "no", "stop"]
    batch = train.get_batch([0, 5])
    assert batch["audio"].shape == (2, 9600) and batch["text"] == [train.texts[0], train.texts[5]]


def test_clips_hold_speech_and_are_deterministic():
    a, b = SpokenWords(**SMALL, seed=3), SpokenWords(**SMALL, seed=3)
    assert torch.equal(a.audio, b.audio)
    assert (a.audio.abs().amax(1) > 0.05).all()
    assert not torch.equal(a.audio, SpokenWords(**SMALL, seed=4).audio)  # other rates, pitches


def test_label_kinds_and_their_splits():
    speakers = SpokenWords(**SMALL, label="speaker", test_words=1)
    held = SpokenWords(**SMALL, label="speaker", test_words=1, split="test")
    assert speakers.num_classes == 6 and set(held.texts) == {"stop"}
    assert set(speakers.labels.tolist()) == set(held.labels.tolist())
    dialects = SpokenWords(**SMALL, label="dialect")
    assert dialects.classes == ["en-us", "en-gb-scotland"] and torch.equal(
        dialects.labels, dialects.dialects
    )
    with pytest.raises(ValueError, match="split_by='word'"):
        SpokenWords(**SMALL, label="speaker", split_by="voice")
    with pytest.raises(ValueError, match="split_by='voice'"):
        SpokenWords(**SMALL, split_by="word")
    with pytest.raises(ValueError, match="hold out between 1 and 2 variants"):
        SpokenWords(**{**SMALL, "test_variants": 3})


def test_registered_datasets():
    data = manyview.create("dataset", "spoken_words", **SMALL, split="test")
    assert len(data) == 6
    assert {"spoken_words", "audiofolder"} <= set(manyview.available("dataset"))


class TestSpokenWordsContract(DatasetContractTests):
    name = "spoken_words"
    kwargs = SMALL
