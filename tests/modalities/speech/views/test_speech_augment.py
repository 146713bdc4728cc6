"""speech_augment: the waveform pipeline and its features in one view, with strength presets."""

from __future__ import annotations

import pytest

from manyview_speech import views as V


def test_strengths_and_features(g):
    x = V.example_waveforms(3, 1.0)
    for strength in ("light", "medium", "strong"):
        assert V.SpeechAugment(strength)(x, generator=g(0)).shape == (3, 64, 101)
    assert V.SpeechAugment(features="mfcc", n_mfcc=20)(x, generator=g(0)).shape == (3, 20, 101)
    assert V.SpeechAugment(features="waveform")(x, generator=g(0)).shape == x.shape
    with pytest.raises(ValueError, match="strength must be one of"):
        V.SpeechAugment("extreme")
