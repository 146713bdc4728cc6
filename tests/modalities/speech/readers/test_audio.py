"""manyview-speech's ``audio`` reader: mono waveforms at one rate, cut or padded, and the
errors of files it cannot use."""

from __future__ import annotations

import math

import pytest
import torch

import manyview
from manyview.readers import get_reader
from manyview_speech.audio import AUDIO_EXTENSIONS, AudioFileError, write_audio
from manyview_speech.readers.audio import AudioReader


def _tone(seconds: float, rate: int) -> torch.Tensor:
    t = torch.arange(round(seconds * rate)) / rate
    return 0.5 * torch.sin(2 * math.pi * 220 * t)


def test_registered_with_its_modality_and_suffixes():
    entry = manyview.entry("reader", "audio")
    assert entry.plugin == "manyview-speech" and entry.modality == "audio" and entry.summary
    assert entry.meta["suffixes"] == AUDIO_EXTENSIONS == AudioReader.suffixes


def test_reads_resamples_and_fits_the_length(tmp_path):
    stereo = torch.stack([_tone(0.5, 8000), _tone(0.5, 8000) * 0.5])
    write_audio(tmp_path / "a.wav", stereo, 8000)
    read = manyview.create("reader", "audio", sample_rate=16000)
    assert isinstance(read, AudioReader)
    wave = read(tmp_path / "a.wav")
    assert wave.dtype == torch.float32 and wave.shape == (8000,)  # 0.5 s at 16 kHz, mono
    assert wave.abs().max() <= 1.0
    long = get_reader("audio", sample_rate=8000, samples=6000)(str(tmp_path / "a.wav"))
    assert long.shape == (6000,) and torch.equal(long[4000:], torch.zeros(2000))
    middle = get_reader("audio", sample_rate=8000, samples=2000, align="center")(tmp_path / "a.wav")
    assert torch.allclose(
        middle, get_reader("audio", sample_rate=8000)(tmp_path / "a.wav")[1000:3000]
    )


def test_bad_files_name_the_file(tmp_path):
    read = AudioReader()
    with pytest.raises(FileNotFoundError, match="no such audio file"):
        read(tmp_path / "none.wav")
    (tmp_path / "bad.wav").write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(AudioFileError, match=r"bad\.wav"):
        read(tmp_path / "bad.wav")
    assert issubclass(AudioFileError, ValueError)  # what the manifest dataset catches


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"sample_rate": 0}, "sample_rate must be a positive int"),
        ({"samples": -1}, "samples must be a positive int"),
        ({"align": "end"}, "align must be 'start' or 'center'"),
    ],
)
def test_bad_options(options, match):
    with pytest.raises(ValueError, match=match):
        manyview.create("reader", "audio", **options)
