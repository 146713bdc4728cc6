"""Audio IO through soundfile: round trips, mono mixdown, resampling, bad files, loading many,
fitting lengths."""

from __future__ import annotations

import struct

import pytest
import soundfile as sf
import torch

from manyview_speech.audio import (
    AudioFileError,
    fit_length,
    load_many,
    read_audio,
    resample,
    to_mono,
    trim_silence,
    write_audio,
)


@pytest.mark.parametrize("suffix", [".wav", ".flac"])
def test_round_trip_keeps_samples_and_rate(tmp_path, signals, suffix):
    x = signals.tone(440, 0.5, 22050)
    path = write_audio(tmp_path / f"a{suffix}", x, 22050)
    y, rate = read_audio(path)
    assert rate == 22050 and y.dtype == torch.float32 and y.shape == x.shape
    assert (y - x).abs().max() < 1e-4  # 16-bit PCM: one step is 3e-5


def test_float_wav_round_trip_is_exact(tmp_path, signals):
    x = signals.chirp(100, 4000, 0.3)
    y, _ = read_audio(write_audio(tmp_path / "f.wav", x, 16000, subtype="FLOAT"))
    assert torch.equal(x, y)


def test_stereo_is_mixed_down_to_mono(tmp_path, signals):
    left, right = signals.tone(300, 0.25), signals.tone(700, 0.25)
    path = write_audio(tmp_path / "stereo.wav", torch.stack([left, right]), 16000, subtype="FLOAT")
    mono, _ = read_audio(path)
    assert mono.shape == left.shape
    assert torch.allclose(mono, (left + right) / 2, atol=1e-6)
    both, _ = read_audio(path, mono=False)
    assert both.shape == (2, left.shape[0])
    assert torch.equal(to_mono(both), mono)


@pytest.mark.parametrize(("orig", "new"), [(44100, 16000), (22050, 16000), (8000, 16000)])
def test_resampling_keeps_a_tones_frequency(signals, orig, new):
    x = signals.tone(440, 1.0, orig)
    y = resample(x, orig, new)
    assert y.shape[0] == new  # one second
    assert abs(signals.peak_hz(y, new) - 440) <= 1.0  # one FFT bin
    assert abs(signals.peak_hz(x, orig) - 440) <= 1.0


def test_read_resamples_a_chirp_on_request(tmp_path, signals):
    path = write_audio(tmp_path / "c.flac", signals.chirp(200, 2000, 1.0, 44100), 44100)
    y, rate = read_audio(path, sample_rate=16000)
    assert rate == 16000 and y.shape == (16000,)
    assert abs(signals.peak_hz(y[:1600], 16000) - 290) < 60  # the sweep's first 0.1 s


def test_empty_file_names_the_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(AudioFileError, match=r"empty\.wav.*empty \(0 bytes\)"):
        read_audio(path)


def test_corrupt_header_names_the_file(tmp_path, signals):
    good = write_audio(tmp_path / "good.wav", signals.tone(440, 0.1), 16000).read_bytes()
    path = tmp_path / "corrupt.wav"
    path.write_bytes(b"RIFF" + good[4:8] + b"WAVEjunk" + b"\x00" * 64)
    with pytest.raises(AudioFileError, match=r"corrupt\.wav: cannot read audio"):
        read_audio(path)


def test_sample_rate_zero_in_the_header(tmp_path, signals):
    data = bytearray(write_audio(tmp_path / "a.wav", signals.tone(440, 0.1), 16000).read_bytes())
    data[24:28] = struct.pack("<I", 0)  # the fmt chunk's sample rate
    path = tmp_path / "rate0.wav"
    path.write_bytes(bytes(data))
    with pytest.raises(AudioFileError, match=r"rate0\.wav.*sample rate of 0"):
        read_audio(path)


def test_sample_rate_zero_elsewhere(tmp_path, signals):
    with pytest.raises(ValueError, match="sample_rate must be a positive int"):
        write_audio(tmp_path / "x.wav", signals.tone(440, 0.1), 0)
    with pytest.raises(ValueError, match="orig_freq must be a positive"):
        resample(signals.tone(440, 0.1), 0, 16000)


def test_a_file_without_samples_and_a_missing_file(tmp_path):
    path = tmp_path / "none.wav"
    sf.write(str(path), torch.zeros(0).numpy(), 16000)
    with pytest.raises(AudioFileError, match=r"none\.wav: the file holds no samples"):
        read_audio(path)
    with pytest.raises(FileNotFoundError, match=r"missing\.wav"):
        read_audio(tmp_path / "missing.wav")


def test_write_refuses_bad_waveforms(tmp_path):
    with pytest.raises(ValueError, match="NaN"):
        write_audio(tmp_path / "x.wav", torch.tensor([0.0, float("nan")]), 16000)
    with pytest.raises(ValueError, match=r"\(channels, samples\)"):
        write_audio(tmp_path / "x.wav", torch.zeros(2, 3, 4), 16000)


def test_load_many_skips_and_counts(clip_folder):
    root = clip_folder
    paths = sorted(root.rglob("*.*"))
    waves, kept, skipped = load_many(paths, sample_rate=8000)
    assert len(waves) == 6 and len(skipped) == 2 and len(kept) == 6
    assert {p.split("/")[-1] for p, _ in skipped} == {"empty.wav", "bad.flac"}
    assert all(w.shape == (4000,) for w in waves)
    with pytest.raises(AudioFileError):
        load_many(paths, on_error="raise")


def test_fit_length_and_trim(signals):
    x = torch.cat([torch.zeros(800), signals.tone(500, 0.1), torch.zeros(800)])
    trimmed = trim_silence(x)
    assert 1600 <= trimmed.shape[0] <= 2100
    assert fit_length(x, 100).shape == (100,) and fit_length(x, 5000, align="center").shape == (
        5000,
    )
    centred = fit_length(torch.ones(4), 8, align="center")
    assert centred.tolist() == [0, 0, 1, 1, 1, 1, 0, 0]
