"""Waveform views (crop, shift, gain, noise, speed; speech_augment too in the determinism
check): per-sample randomness, determinism, what each view promises, and bad input."""

from __future__ import annotations

import pytest
import torch

from manyview.testing import check_view
from manyview_speech import views as V

WAVE_VIEWS = {
    "crop": lambda: V.AudioCrop(0.5),
    "shift": lambda: V.AudioShift(0.1),
    "gain": lambda: V.AudioGain(-6, 6),
    "noise": lambda: V.AudioNoise(5, 20),
    "speed": lambda: V.AudioSpeed((0.9, 1.1)),
    "speech_augment": lambda: V.SpeechAugment(),
}


@pytest.mark.parametrize("name", list(WAVE_VIEWS))
def test_deterministic_per_seed_and_different_per_row(name, signals, g):
    view = WAVE_VIEWS[name]()
    check_view(view)
    x = signals.chirp(200, 3000, 1.0).repeat(6, 1)  # six identical rows
    a, b = view(x, generator=g(1)), view(x, generator=g(1))
    assert torch.equal(a, b)
    assert not torch.equal(a, view(x, generator=g(2))), "another seed gave the same view"
    assert len({tuple(row.tolist()) for row in a.flatten(1)}) > 1, "every row drew the same"


def test_crop_is_a_window_of_the_input(signals, g):
    x = torch.arange(2000.0).repeat(8, 1) / 2000
    out = V.AudioCrop(seconds=0.05, sample_rate=16000)(x, generator=g(0))  # 800 samples
    assert out.shape == (8, 800)
    starts = (out[:, 0] * 2000).round()
    assert torch.equal(out, (starts[:, None] + torch.arange(800.0)) / 2000)
    assert starts.unique().numel() > 1
    short = V.AudioCrop(seconds=0.25)(x[:, :1000], generator=g(0))  # padded to 4000
    assert short.shape == (8, 4000) and torch.allclose(short.sum(1), x[:, :1000].sum(1))


def test_shift_moves_each_row_within_the_limit(signals, g):
    x = signals.noise_burst(0.5).repeat(8, 1)
    out = V.AudioShift(max_seconds=0.01, sample_rate=16000)(x, generator=g(3))  # 160 samples
    for row in out:
        lags = [
            s for s in range(-160, 161) if torch.equal(row, torch.roll(x[0], s) * _valid(s, 8000))
        ]
        assert lags, "the row is not a shifted copy"


def _valid(s: int, n: int) -> torch.Tensor:
    mask = torch.ones(n)
    if s > 0:
        mask[:s] = 0
    elif s < 0:
        mask[s:] = 0
    return mask


def test_gain_stays_in_range(signals, g):
    x = signals.tone(300, 0.2).repeat(16, 1)
    out = V.AudioGain(-6, 3)(x, generator=g(0))
    db = 20 * torch.log10(out.abs().amax(1) / x.abs().amax(1))
    assert (db >= -6 - 1e-4).all() and (db <= 3 + 1e-4).all() and db.std() > 0.5


@pytest.mark.parametrize("color", ["white", "pink"])
def test_noise_at_the_drawn_snr(signals, color, g):
    x = signals.chirp(100, 2000, 0.5).repeat(32, 1)
    view = V.AudioNoise(5, 15, color=color)
    out = view(x, generator=g(0))
    snr = view.snr_db(x, out)
    assert (snr > 5 - 1e-3).all() and (snr < 15 + 1e-3).all() and snr.std() > 1
    silent = torch.zeros(2, 800)
    assert torch.equal(view(silent, generator=g(0)), silent)  # silence stays silent


def test_speed_moves_a_tone(signals, g):
    x = signals.tone(1000, 1.0).repeat(2, 1)
    fast = V.AudioSpeed((1.1,))(x, generator=g(0))
    slow = V.AudioSpeed((0.9,))(x, generator=g(0))
    assert fast.shape == slow.shape == x.shape
    assert abs(signals.peak_hz(fast[0, :14000], 16000) - 1100) < 3
    assert abs(signals.peak_hz(slow[0], 16000) - 900) < 3
    assert fast[0, 14600:].abs().max() == 0  # faster: shorter, padded at the end


def test_bad_inputs_say_what_to_do():
    stereo = torch.zeros(2, 2, 1600)
    with pytest.raises(ValueError, match="to_mono"):
        V.AudioGain()(stereo)
    with pytest.raises(ValueError, match=r"add a batch dimension"):
        V.AudioNoise()(torch.zeros(1600))
    with pytest.raises(ValueError, match="put log_mel or mfcc before spec_augment"):
        V.SpecAugment()(torch.zeros(2, 1600))
    with pytest.raises(ValueError, match="float samples"):
        V.AudioShift()(torch.zeros(2, 1600, dtype=torch.int16))
    with pytest.raises(ValueError, match="factors"):
        V.AudioSpeed(())
    with pytest.raises(ValueError, match="p must lie in"):
        V.AudioNoise(p=2)
