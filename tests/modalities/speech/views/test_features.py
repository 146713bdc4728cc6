"""The feature views: log-mel and MFCC of waveforms, as views."""

from __future__ import annotations

from manyview_speech import views as V


def test_feature_views():
    x = V.example_waveforms(3, 1.0)
    assert V.LogMelView(n_mels=40)(x).shape == (3, 40, 101)
    assert V.MFCCView(n_mfcc=13)(x).shape == (3, 13, 101)
