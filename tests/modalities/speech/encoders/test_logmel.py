"""The log-mel encoders (CNN and transformer): waveform vs feature inputs, per-sample
outputs, any length, and wrong features."""

from __future__ import annotations

import pytest
import torch

from manyview_speech.encoders.logmel import LogMelEncoder, LogMelTransformerEncoder
from manyview_speech.views import LogMelView


@pytest.mark.parametrize("make", [LogMelEncoder, LogMelTransformerEncoder])
def test_waveforms_or_features_give_the_same_output(make, signals):
    torch.manual_seed(0)
    encoder = make(n_mels=40, output_dim=32).eval()
    x = torch.stack([signals.tone(440, 0.5), signals.chirp(200, 2000, 0.5)])
    with torch.no_grad():
        from_waves = encoder(x)
        from_feats = encoder(LogMelView(n_mels=40)(x))
    assert from_waves.shape == (2, 32)
    assert torch.allclose(from_waves, from_feats, atol=1e-5)


def test_logmel_encoder_in_eval_mode_is_per_sample(signals):
    encoder = LogMelEncoder().eval()
    x = torch.stack(
        [signals.tone(440, 0.5), signals.noise_burst(0.5), signals.chirp(50, 5000, 0.5)]
    )
    with torch.no_grad():
        assert torch.allclose(encoder(x)[1], encoder(x[1:2])[0], atol=1e-5)


def test_logmel_encoder_takes_any_length_and_refuses_wrong_features():
    encoder = LogMelEncoder(n_mels=40)
    assert encoder(torch.randn(2, 300)).shape == (2, 128)
    assert encoder(torch.randn(2, 48000)).shape == (2, 128)
    with pytest.raises(ValueError, match=r"n_mels=40"):
        encoder(torch.randn(2, 64, 100))
    with pytest.raises(ValueError, match="to_mono"):
        encoder(torch.randn(2, 2, 16000))
    with pytest.raises(ValueError, match="divisible by heads"):
        LogMelTransformerEncoder(channels=(30,), heads=4)
