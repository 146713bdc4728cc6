"""``reference_classifier``: the generation benchmark's classifier features as an encoder."""

from __future__ import annotations

import pytest
import torch

import manyview
from manyview.benchmarks.generation import reference_classifier
from manyview.datasets.digits import Digits


def test_features_are_the_trained_classifiers_and_separate_the_digits():
    encoder = manyview.create("encoder", "reference_classifier", dataset_options={"size": 8})
    train = Digits("train", size=8)
    model = reference_classifier(train.images, train.labels)
    test = Digits("test", size=8)
    with torch.no_grad():
        torch.testing.assert_close(encoder(test.images), model.features(test.images))
        assert (model.head(encoder(test.images)).argmax(1) == test.labels).float().mean() > 0.9
    assert encoder.output_dim == 64 and all(p.requires_grad for p in encoder.parameters())


def test_wrong_images_and_datasets_are_one_line():
    encoder = manyview.create("encoder", "reference_classifier", dataset_options={"size": 8})
    with pytest.raises(ValueError, match=r"expects images \(N, 1x8x8\)") as info:
        encoder(torch.rand(2, 1, 16, 16))
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="'image' samples") as info:
        manyview.create(
            "encoder",
            "reference_classifier",
            dataset="synthetic",
            dataset_options={"modalities": {"a": 4}, "num_samples": 8},
        )
    assert "\n" not in str(info.value)
