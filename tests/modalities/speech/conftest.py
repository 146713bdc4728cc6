"""Signals the speech tests synthesise (tones, chirps, noise bursts, spoken words), and a
folder of clips."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from manyview_speech.audio import write_audio


def tone(
    freq: float, seconds: float = 1.0, sample_rate: int = 16000, amp: float = 0.5
) -> torch.Tensor:
    t = torch.arange(round(seconds * sample_rate), dtype=torch.float64) / sample_rate
    return (amp * torch.sin(2 * math.pi * freq * t)).float()


def chirp(f0: float, f1: float, seconds: float = 1.0, sample_rate: int = 16000) -> torch.Tensor:
    """A linear sweep from f0 to f1 Hz."""
    t = torch.arange(round(seconds * sample_rate), dtype=torch.float64) / sample_rate
    phase = 2 * math.pi * (f0 * t + (f1 - f0) * t**2 / (2 * seconds))
    return (0.5 * torch.sin(phase)).float()


def noise_burst(seconds: float = 1.0, sample_rate: int = 16000, seed: int = 0) -> torch.Tensor:
    """Silence with 0.2 s of white noise in the middle."""
    n = round(seconds * sample_rate)
    x = torch.zeros(n)
    burst = round(0.2 * sample_rate)
    start = (n - burst) // 2
    x[start : start + burst] = 0.3 * torch.randn(
        burst, generator=torch.Generator().manual_seed(seed)
    )
    return x


def peak_hz(x: torch.Tensor, sample_rate: int) -> float:
    """The frequency of the largest FFT bin (Hann window)."""
    spectrum = torch.fft.rfft(
        x.double() * torch.hann_window(x.shape[-1], dtype=torch.float64)
    ).abs()
    return float(spectrum.argmax()) * sample_rate / x.shape[-1]


@pytest.fixture
def signals() -> SimpleNamespace:
    return SimpleNamespace(tone=tone, chirp=chirp, noise_burst=noise_burst, peak_hz=peak_hz)


@pytest.fixture
def clip_folder(tmp_path: Path) -> Path:
    """A folder of labelled clips, ``high/`` and ``low/`` (three tones each), with an empty
    and a corrupt file among them."""
    root = tmp_path / "clips"
    for label, freq in (("high", 1000), ("low", 200)):
        for i in range(3):
            write_audio(root / label / f"{i}.wav", tone(freq + 10 * i, 0.5), 16000)
    (root / "low" / "empty.wav").write_bytes(b"")
    (root / "high" / "bad.flac").write_bytes(b"not audio at all" * 4)
    return root


@pytest.fixture(autouse=True)
def one_thread():
    """Run these small-tensor tests on one torch thread: on a busy machine, two OpenMP
    threads that must meet at every barrier were measured ten times slower than one."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
