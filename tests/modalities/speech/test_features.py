"""Log-mel and MFCC features: shapes, per-sample computation, dtype, short and bad inputs."""

from __future__ import annotations

import pytest
import torch

from manyview_speech.features import MFCC, LogMel


def test_shapes(signals):
    x = torch.stack([signals.tone(440, 1.0), signals.chirp(100, 4000, 1.0), signals.noise_burst()])
    assert LogMel(n_mels=40)(x).shape == (3, 40, 101)
    assert LogMel(hop_length=320)(x).shape == (3, 64, 51)
    assert MFCC(n_mfcc=13)(x).shape == (3, 13, 101)
    assert LogMel()(x[0]).shape == (64, 101)  # one waveform


@pytest.mark.parametrize("make", [LogMel, MFCC])
def test_each_sample_is_computed_on_its_own(signals, make):
    """torchaudio's MFCC floors decibels over a whole 2-D batch; ours per sample."""
    quiet = 0.001 * signals.tone(300, 0.5)
    loud = signals.chirp(100, 4000, 0.5)
    features = make()
    batch = features(torch.stack([quiet, loud]))
    alone = features(quiet[None])[0]
    assert torch.allclose(batch[0], alone, atol=1e-4)


def test_a_tone_lights_its_mel_band(signals):
    feats = LogMel(n_mels=64)
    low, high = feats(signals.tone(300, 0.5)), feats(signals.tone(3000, 0.5))
    assert low.mean(1).argmax() < high.mean(1).argmax()


def test_float64_and_silence_and_short_input():
    feats = LogMel()
    assert feats(torch.zeros(2, 16000, dtype=torch.float64)).dtype == torch.float64
    assert torch.isfinite(feats(torch.zeros(2, 16000))).all()  # log of silence is finite
    assert feats(torch.zeros(2, 50)).shape == (2, 64, 2)  # shorter than half an FFT
    assert torch.isfinite(MFCC()(torch.zeros(2, 50))).all()


def test_bad_inputs():
    with pytest.raises(ValueError, match="to_mono"):
        LogMel()(torch.zeros(2, 2, 100))
    with pytest.raises(ValueError, match="float samples"):
        MFCC()(torch.zeros(2, 100, dtype=torch.int32))
    with pytest.raises(ValueError, match="cannot exceed n_mels"):
        MFCC(n_mfcc=80, n_mels=40)
    with pytest.raises(ValueError, match="n_mels must be a positive int"):
        LogMel(n_mels=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_features_follow_the_input_to_the_gpu(signals):
    x = signals.tone(440, 0.5)[None].cuda()
    assert LogMel()(x).device.type == "cuda" and MFCC()(x).device.type == "cuda"
