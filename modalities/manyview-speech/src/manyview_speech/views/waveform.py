"""Waveform views (``audio_crop``, ``audio_shift``, ``audio_gain``, ``audio_noise``,
``audio_speed``): mono waveforms ``(N, samples)`` in, the batch size kept, every row
drawing its own parameters in one vectorised draw."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from manyview.options import check_fraction, check_non_negative, check_positive
from manyview_speech.audio import resample, speed_ratio
from manyview_speech.features import check_waveforms
from manyview_speech.views.base import (
    WaveView,
    apply_p,
    example_waveforms,
    rand,
    randint,
    randn,
    shifted,
)

__all__ = ["AudioCrop", "AudioGain", "AudioNoise", "AudioShift", "AudioSpeed"]


class AudioCrop(WaveView):
    """A random window of fixed length from each waveform (zero-padded at a random place
    when the waveform is shorter).

    Args:
        seconds: the window's length.
        sample_rate: the waveforms' rate in Hz.
    """

    name = "audio_crop"

    def __init__(self, seconds: float = 1.0, sample_rate: int = 16000) -> None:
        super().__init__(sample_rate)
        self.samples = max(1, round(check_positive(seconds, "seconds", self.name) * sample_rate))

    def forward(self, x: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        x = check_waveforms(x, self.name)
        n, t = x.shape
        lo, hi = min(0, t - self.samples), max(0, t - self.samples)
        start = randint(lo, hi, n, generator, x.device)
        return shifted(x, start, self.samples)

    def example_inputs(self, n: int = 4, *, generator: torch.Generator | None = None) -> Tensor:
        seconds = 1.5 * self.samples / self.sample_rate
        return example_waveforms(n, seconds, self.sample_rate, generator=generator)


class AudioShift(WaveView):
    """Shift each waveform in time by up to ``max_seconds`` either way (zero-filled, or
    wrapped around with ``circular``); the length is kept.

    Args:
        max_seconds: the largest shift.
        sample_rate: the waveforms' rate in Hz.
        circular: wrap around instead of filling with zeros.
        p: the probability that a sample is shifted.
    """

    name = "audio_shift"

    def __init__(
        self,
        max_seconds: float = 0.1,
        sample_rate: int = 16000,
        circular: bool = False,
        p: float = 1.0,
    ) -> None:
        super().__init__(sample_rate)
        self.max_shift = round(
            check_non_negative(max_seconds, "max_seconds", self.name) * sample_rate
        )
        self.circular, self.p = bool(circular), check_fraction(p, "p", self.name)

    def forward(self, x: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        x = check_waveforms(x, self.name)
        n, t = x.shape
        m = min(self.max_shift, t - 1) if not self.circular else self.max_shift
        shift = randint(-m, m, n, generator, x.device)
        return apply_p(x, shifted(x, -shift, t, self.circular), self.p, generator)


class AudioGain(WaveView):
    """Multiply each waveform by a gain drawn uniformly in decibels.

    Args:
        min_db: the lowest gain in dB.
        max_db: the highest gain in dB.
        p: the probability that a sample's gain is changed.
    """

    name = "audio_gain"

    def __init__(
        self, min_db: float = -6.0, max_db: float = 6.0, p: float = 1.0, sample_rate: int = 16000
    ) -> None:
        super().__init__(sample_rate)
        if not min_db <= max_db:
            raise ValueError(f"audio_gain: need min_db <= max_db, got {min_db} > {max_db}")
        self.min_db, self.max_db, self.p = (
            float(min_db),
            float(max_db),
            check_fraction(p, "p", self.name),
        )

    def forward(self, x: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        x = check_waveforms(x, self.name)
        db = self.min_db + (self.max_db - self.min_db) * rand(x.shape[0], generator, x.device)
        gained = x * torch.pow(10.0, db / 20).to(x.dtype)[:, None]
        return apply_p(x, gained, self.p, generator)


class AudioNoise(WaveView):
    """Add white or pink noise at a signal-to-noise ratio drawn per sample.

    The SNR is relative to each waveform's own mean power, so a silent waveform stays
    silent.

    Args:
        min_snr_db: the lowest SNR in dB.
        max_snr_db: the highest SNR in dB.
        color: ``"white"`` (flat spectrum) or ``"pink"`` (power falling as 1/f).
        p: the probability that noise is added to a sample.
    """

    name = "audio_noise"

    def __init__(
        self,
        min_snr_db: float = 10.0,
        max_snr_db: float = 30.0,
        color: str = "white",
        p: float = 1.0,
        sample_rate: int = 16000,
    ) -> None:
        super().__init__(sample_rate)
        if not min_snr_db <= max_snr_db:
            raise ValueError(
                f"audio_noise: need min_snr_db <= max_snr_db, got {min_snr_db} > {max_snr_db}"
            )
        if color not in ("white", "pink"):
            raise ValueError(f"audio_noise: color must be 'white' or 'pink', got {color!r}")
        self.min_snr_db, self.max_snr_db = float(min_snr_db), float(max_snr_db)
        self.color, self.p = color, check_fraction(p, "p", self.name)

    def noise(
        self, shape: Sequence[int], generator: torch.Generator | None, device: torch.device
    ) -> Tensor:
        """Unit-power noise of ``shape`` (N, T)."""
        noise = randn(shape, generator, device)
        if self.color == "pink" and shape[1] > 1:
            spectrum = torch.fft.rfft(noise, dim=1)
            f = torch.arange(spectrum.shape[1], device=device).clamp(min=1).to(noise.dtype)
            spectrum = spectrum / f.sqrt()
            spectrum[:, 0] = 0
            noise = torch.fft.irfft(spectrum, n=shape[1], dim=1)
        return noise / noise.pow(2).mean(1, keepdim=True).sqrt().clamp(min=1e-12)

    def forward(self, x: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        x = check_waveforms(x, self.name)
        n = x.shape[0]
        snr = self.min_snr_db + (self.max_snr_db - self.min_snr_db) * rand(n, generator, x.device)
        power = x.detach().pow(2).mean(1)
        scale = torch.sqrt(power / torch.pow(10.0, snr / 10)).to(x.dtype)
        noisy = x + scale[:, None] * self.noise(x.shape, generator, x.device).to(x.dtype)
        return apply_p(x, noisy, self.p, generator)

    def snr_db(self, clean: Tensor, noisy: Tensor) -> Tensor:
        """The SNR (dB) of each row of ``noisy`` against ``clean``, for checks."""
        noise = noisy - clean
        return 10 * torch.log10(clean.pow(2).mean(1) / noise.pow(2).mean(1).clamp(min=1e-20))


class AudioSpeed(WaveView):
    """Speed perturbation (Kaldi style): play each waveform faster or slower by a factor
    drawn from ``factors``, which moves pitch and tempo together; the length is kept (cut or
    zero-padded at the end).

    Rows that share a factor are resampled together (band-limited,
    ``torchaudio.functional.resample``): one call per distinct factor, none per sample.

    Args:
        factors: the speed factors to draw from (1.1 = 10% faster and higher).
        sample_rate: the waveforms' rate in Hz (for the example inputs).
    """

    name = "audio_speed"

    def __init__(
        self, factors: Sequence[float] = (0.9, 1.0, 1.1), sample_rate: int = 16000
    ) -> None:
        super().__init__(sample_rate)
        factors = tuple(float(f) for f in factors)
        if not factors or any(not 0.25 <= f <= 4 for f in factors):
            raise ValueError(
                f"audio_speed: factors must be a non-empty list in [0.25, 4], got {factors}"
            )
        self.factors = factors
        self.ratios = [speed_ratio(f) for f in factors]

    def forward(self, x: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        x = check_waveforms(x, self.name)
        n, t = x.shape
        choice = randint(0, len(self.factors) - 1, n, generator, x.device)
        out = x.clone()
        for k, (orig, new) in enumerate(self.ratios):
            if orig == new:
                continue
            rows = (choice == k).nonzero().flatten()
            if rows.numel() == 0:
                continue
            y = resample(x[rows], orig, new)
            y = y[:, :t] if y.shape[1] >= t else nn.functional.pad(y, (0, t - y.shape[1]))
            out[rows] = y
        return out
