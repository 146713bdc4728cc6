"""Speech views: batched augmentations with per-sample randomness from a ``torch.Generator``.

Waveform views take mono waveforms ``(N, samples)`` and keep the batch size; every row
draws its own parameters (a crop offset, a gain, an SNR, a speed factor) in one vectorised
draw, with no Python loop over the samples. Feature views take ``(N, features, frames)``.
A typical pipeline, as a config's ``views`` list::

    audio_shift -> audio_gain -> audio_noise -> audio_speed -> log_mel -> spec_augment

or ``speech_augment``, which is that pipeline in one view with strength presets. Each
call with the same seeded generator gives the same output; the randomness is drawn on the
generator's device and moved to the input's.

View sets (:func:`view_set`) make the M pipelines of multi-view training: M independent
draws of one pipeline (``"two_view"``, ``"multi_view"``), or multi-crop: two long crops and
M - 2 short ones (``"multi_crop"``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from manyview_speech.audio import resample, speed_ratio
from manyview_speech.features import MFCC, LogMel, check_waveforms

__all__ = [
    "AudioCrop",
    "AudioGain",
    "AudioNoise",
    "AudioShift",
    "AudioSpeed",
    "Compose",
    "LogMelView",
    "MFCCView",
    "SpecAugment",
    "SpeechAugment",
    "ViewSet",
    "example_waveforms",
    "view_set",
]


# ---------------------------------------------------------------------------- randomness


def _gen_device(generator: torch.Generator | None, device: torch.device) -> torch.device:
    return generator.device if generator is not None else device


def _rand(n: Any, generator: torch.Generator | None, device: torch.device) -> Tensor:
    shape = (n,) if isinstance(n, int) else tuple(n)
    return torch.rand(shape, generator=generator, device=_gen_device(generator, device)).to(device)


def _randn(shape: Sequence[int], generator: torch.Generator | None, device: torch.device) -> Tensor:
    return torch.randn(tuple(shape), generator=generator, device=_gen_device(generator, device)).to(
        device
    )


def _randint(
    low: Tensor | int,
    high: Tensor | int,
    n: Any,
    generator: torch.Generator | None,
    device: torch.device,
) -> Tensor:
    """Integers uniform in [low, high] (inclusive; tensors broadcast), shape ``n``."""
    u = _rand(n, generator, device)
    low_t = torch.as_tensor(low, device=device)
    span = torch.as_tensor(high, device=device) - low_t + 1
    return (low_t + (u * span).floor().long()).minimum(low_t + span - 1)


def _apply_p(x: Tensor, y: Tensor, p: float, generator: torch.Generator | None) -> Tensor:
    """Per row: ``y`` with probability ``p``, else ``x``."""
    if p >= 1:
        return y
    keep = _rand(x.shape[0], generator, x.device) < p
    return torch.where(keep.view(-1, *([1] * (x.dim() - 1))), y, x)


def _check_p(p: float, who: str) -> float:
    if not 0 <= p <= 1:
        raise ValueError(f"{who}: p must lie in [0, 1], got {p}")
    return float(p)


def _shifted(x: Tensor, shift: Tensor, length: int, circular: bool = False) -> Tensor:
    """``out[i, j] = x[i, j + shift[i]]`` for j < length; zero outside x (or wrapped)."""
    t = x.shape[1]
    idx = torch.arange(length, device=x.device)[None, :] + shift[:, None]
    if circular:
        return x.gather(1, idx.remainder(t))
    valid = (idx >= 0) & (idx < t)
    return x.gather(1, idx.clamp(0, t - 1)) * valid.to(x.dtype)


def example_waveforms(
    n: int = 4,
    seconds: float = 1.0,
    sample_rate: int = 16000,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    """``(n, samples)`` test signals: a tone of a random pitch (100..1000 Hz) with a
    harmonic, a 3..6 Hz syllable envelope and a little noise, peak about 0.5."""
    samples = max(1, round(seconds * sample_rate))
    t = torch.arange(samples) / sample_rate
    f0 = 100 + 900 * torch.rand(n, 1, generator=generator)
    rate = 3 + 3 * torch.rand(n, 1, generator=generator)
    phase = 2 * math.pi * torch.rand(n, 1, generator=generator)
    voice = torch.sin(2 * math.pi * f0 * t + phase) + 0.4 * torch.sin(4 * math.pi * f0 * t)
    envelope = 0.5 - 0.5 * torch.cos(2 * math.pi * rate * t)
    noise = 0.01 * torch.randn(n, samples, generator=generator)
    return (0.35 * voice * envelope + noise).float()


class _WaveformExamples:
    """Example inputs of a view that takes waveforms: ``n`` one-second test signals at its
    ``sample_rate``."""

    sample_rate: int

    def example_inputs(self, n: int = 4, *, generator: torch.Generator | None = None) -> Tensor:
        return example_waveforms(n, 1.0, self.sample_rate, generator=generator)


class _WaveView(_WaveformExamples, nn.Module):
    """Base of the waveform views: input check and example inputs."""

    name = "audio view"

    def __init__(self, sample_rate: int = 16000) -> None:
        super().__init__()
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate < 1:
            raise ValueError(
                f"{self.name}: sample_rate must be a positive int, got {sample_rate!r}"
            )
        self.sample_rate = sample_rate


# ---------------------------------------------------------------------------- waveform views


class AudioCrop(_WaveView):
    """A random window of fixed length from each waveform (zero-padded at a random place
    when the waveform is shorter).

    Args:
        seconds: the window's length.
        sample_rate: the waveforms' rate in Hz.
    """

    name = "audio_crop"

    def __init__(self, seconds: float = 1.0, sample_rate: int = 16000) -> None:
        super().__init__(sample_rate)
        if not seconds > 0:
            raise ValueError(f"audio_crop: seconds must be > 0, got {seconds}")
        self.samples = max(1, round(seconds * sample_rate))

    def forward(self, x: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        x = check_waveforms(x, self.name)
        n, t = x.shape
        lo, hi = min(0, t - self.samples), max(0, t - self.samples)
        start = _randint(lo, hi, n, generator, x.device)
        return _shifted(x, start, self.samples)

    def example_inputs(self, n: int = 4, *, generator: torch.Generator | None = None) -> Tensor:
        seconds = 1.5 * self.samples / self.sample_rate
        return example_waveforms(n, seconds, self.sample_rate, generator=generator)


class AudioShift(_WaveView):
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
        if not max_seconds >= 0:
            raise ValueError(f"audio_shift: max_seconds must be >= 0, got {max_seconds}")
        self.max_shift = round(max_seconds * sample_rate)
        self.circular, self.p = bool(circular), _check_p(p, self.name)

    def forward(self, x: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        x = check_waveforms(x, self.name)
        n, t = x.shape
        m = min(self.max_shift, t - 1) if not self.circular else self.max_shift
        shift = _randint(-m, m, n, generator, x.device)
        return _apply_p(x, _shifted(x, -shift, t, self.circular), self.p, generator)


class AudioGain(_WaveView):
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
        self.min_db, self.max_db, self.p = float(min_db), float(max_db), _check_p(p, self.name)

    def forward(self, x: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        x = check_waveforms(x, self.name)
        db = self.min_db + (self.max_db - self.min_db) * _rand(x.shape[0], generator, x.device)
        gained = x * torch.pow(10.0, db / 20).to(x.dtype)[:, None]
        return _apply_p(x, gained, self.p, generator)


class AudioNoise(_WaveView):
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
        self.color, self.p = color, _check_p(p, self.name)

    def noise(
        self, shape: Sequence[int], generator: torch.Generator | None, device: torch.device
    ) -> Tensor:
        """Unit-power noise of ``shape`` (N, T)."""
        noise = _randn(shape, generator, device)
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
        snr = self.min_snr_db + (self.max_snr_db - self.min_snr_db) * _rand(n, generator, x.device)
        power = x.detach().pow(2).mean(1)
        scale = torch.sqrt(power / torch.pow(10.0, snr / 10)).to(x.dtype)
        noisy = x + scale[:, None] * self.noise(x.shape, generator, x.device).to(x.dtype)
        return _apply_p(x, noisy, self.p, generator)

    def snr_db(self, clean: Tensor, noisy: Tensor) -> Tensor:
        """The SNR (dB) of each row of ``noisy`` against ``clean``, for checks."""
        noise = noisy - clean
        return 10 * torch.log10(clean.pow(2).mean(1) / noise.pow(2).mean(1).clamp(min=1e-20))


class AudioSpeed(_WaveView):
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
        choice = _randint(0, len(self.factors) - 1, n, generator, x.device)
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


# ---------------------------------------------------------------------------- feature views


class _FeatureView(_WaveformExamples):
    """A feature module as a view step: deterministic, so the generator is not used."""

    def forward(self, x: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        return super().forward(x)  # type: ignore[misc]


class LogMelView(_FeatureView, LogMel):
    """Log-mel features as a view step: waveforms ``(N, samples)`` to ``(N, n_mels, frames)``
    (deterministic; see :class:`manyview_speech.features.LogMel` for the arguments)."""


class MFCCView(_FeatureView, MFCC):
    """MFCC features as a view step: waveforms ``(N, samples)`` to ``(N, n_mfcc, frames)``
    (deterministic; see :class:`manyview_speech.features.MFCC` for the arguments)."""


def _bands(
    n: int,
    count: int,
    size: int,
    max_width: int,
    generator: torch.Generator | None,
    device: torch.device,
) -> Tensor:
    """``(n, size)`` bool: the union of ``count`` bands per row, each of a width drawn in
    [0, max_width] (at most ``size``) and a start drawn so the band fits."""
    if count == 0 or max_width == 0:
        return torch.zeros(n, size, dtype=torch.bool, device=device)
    max_width = min(max_width, size)
    width = _randint(0, max_width, (n, count), generator, device)
    start = _randint(torch.zeros_like(width), size - width, (n, count), generator, device)
    pos = torch.arange(size, device=device)
    inside = (pos >= start[..., None]) & (pos < (start + width)[..., None])
    return inside.any(dim=1)


class SpecAugment(nn.Module):
    """SpecAugment's frequency and time masking (Park et al., 2019) on a feature batch
    ``(N, features, frames)``, with masks drawn per sample.

    Each sample gets ``freq_masks`` bands of consecutive feature rows, each of a width drawn
    uniformly in [0, ``freq_width``], and ``time_masks`` bands of consecutive frames of width
    in [0, ``time_width``]; masked cells are set to ``fill``.

    Args:
        freq_masks: frequency masks per sample.
        freq_width: the widest frequency mask (rows).
        time_masks: time masks per sample.
        time_width: the widest time mask (frames).
        fill: ``"mean"`` (each sample's mean, the neutral value of log features), ``"zero"``,
            or a number.
        p: the probability that a sample is masked at all.
    """

    name = "spec_augment"

    def __init__(
        self,
        freq_masks: int = 2,
        freq_width: int = 8,
        time_masks: int = 2,
        time_width: int = 10,
        fill: str | float = "mean",
        p: float = 1.0,
    ) -> None:
        super().__init__()
        for key, value in (
            ("freq_masks", freq_masks),
            ("freq_width", freq_width),
            ("time_masks", time_masks),
            ("time_width", time_width),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"spec_augment: {key} must be an int >= 0, got {value!r}")
        if isinstance(fill, str) and fill not in ("mean", "zero"):
            raise ValueError(f"spec_augment: fill must be 'mean', 'zero' or a number, got {fill!r}")
        self.freq_masks, self.freq_width = freq_masks, freq_width
        self.time_masks, self.time_width = time_masks, time_width
        self.fill, self.p = fill, _check_p(p, self.name)

    def masks(
        self,
        n: int,
        features: int,
        frames: int,
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str = "cpu",
    ) -> tuple[Tensor, Tensor]:
        """The masks :meth:`forward` applies: ``(N, features)`` and ``(N, frames)`` bools."""
        device = torch.device(device)
        freq = _bands(n, self.freq_masks, features, self.freq_width, generator, device)
        time = _bands(n, self.time_masks, frames, self.time_width, generator, device)
        return freq, time

    def forward(self, x: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        if not isinstance(x, Tensor) or x.dim() != 3 or not x.is_floating_point():
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            hint = (
                "; put log_mel or mfcc before spec_augment"
                if isinstance(x, Tensor) and x.dim() == 2
                else ""
            )
            raise ValueError(
                f"spec_augment: expects features (N, features, frames), got {shape}{hint}"
            )
        n, f, t = x.shape
        freq, time = self.masks(n, f, t, generator=generator, device=x.device)
        cells = freq[:, :, None] | time[:, None, :]
        if self.p < 1:
            cells = cells & (_rand(n, generator, x.device) < self.p)[:, None, None]
        if self.fill == "mean":
            value = x.mean(dim=(1, 2), keepdim=True)
        elif self.fill == "zero":
            value = x.new_zeros(())
        else:
            value = x.new_tensor(float(self.fill))
        return torch.where(cells, value, x)

    def example_inputs(self, n: int = 4, *, generator: torch.Generator | None = None) -> Tensor:
        return torch.randn(n, 64, 101, generator=generator)


# ---------------------------------------------------------------------------- compositions


class Compose(nn.Module):
    """Views applied in order, all drawing from the same generator."""

    def __init__(self, views: Sequence[nn.Module]) -> None:
        super().__init__()
        self.views = nn.ModuleList(views)

    def forward(self, x: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        for view in self.views:
            x = view(x, generator=generator)
        return x

    def example_inputs(self, n: int = 4, *, generator: torch.Generator | None = None) -> Tensor:
        return self.views[0].example_inputs(n, generator=generator)


_STRENGTHS: dict[str, dict[str, Any]] = {
    "light": dict(
        shift=0.05, gain=3.0, snr=(20.0, 40.0), noise_p=0.5, speeds=(0.95, 1.0, 1.05),
        freq=(1, 6), time=(1, 8),
    ),
    "medium": dict(
        shift=0.1, gain=6.0, snr=(10.0, 30.0), noise_p=0.8, speeds=(0.9, 1.0, 1.1),
        freq=(2, 8), time=(2, 12),
    ),
    "strong": dict(
        shift=0.2, gain=10.0, snr=(0.0, 20.0), noise_p=1.0, speeds=(0.85, 0.9, 1.0, 1.1, 1.15),
        freq=(2, 12), time=(2, 20),
    ),
}  # fmt: skip


class SpeechAugment(Compose):
    """The standard speech view in one step: time shift, gain, noise at a random SNR and
    speed perturbation on the waveform, then log-mel (or MFCC) features with SpecAugment.

    Args:
        strength: ``"light"``, ``"medium"`` or ``"strong"`` (shift 0.05/0.1/0.2 s, gain
            ±3/6/10 dB, SNR 20-40/10-30/0-20 dB, speed ±5/10/15%, masks of up to 6/8/12 mel
            rows and 8/12/20 frames).
        features: ``"log_mel"``, ``"mfcc"``, or ``"waveform"`` (no features and no
            SpecAugment: for encoders of raw audio such as wav2vec2).
        crop_seconds: first take a random crop of this length (``None``: keep the length).
        sample_rate: the waveforms' rate in Hz.
        n_mels: mel bands (and MFCC's mel bands).
        n_mfcc: MFCC coefficients, for ``features="mfcc"``.
        n_fft: FFT size.
        hop_length: frame step in samples.
    """

    def __init__(
        self,
        strength: str = "medium",
        features: str = "log_mel",
        crop_seconds: float | None = None,
        sample_rate: int = 16000,
        n_mels: int = 64,
        n_mfcc: int = 40,
        n_fft: int = 400,
        hop_length: int = 160,
    ) -> None:
        if strength not in _STRENGTHS:
            raise ValueError(
                f"speech_augment: strength must be one of {sorted(_STRENGTHS)}, got {strength!r}"
            )
        if features not in ("log_mel", "mfcc", "waveform"):
            raise ValueError(
                f"speech_augment: features must be 'log_mel', 'mfcc' or 'waveform', got {features!r}"
            )
        s = _STRENGTHS[strength]
        sr = sample_rate
        views: list[nn.Module] = []
        if crop_seconds is not None:
            views.append(AudioCrop(crop_seconds, sr))
        views += [
            AudioShift(s["shift"], sr),
            AudioGain(-s["gain"], s["gain"], sample_rate=sr),
            AudioNoise(*s["snr"], p=s["noise_p"], sample_rate=sr),
            AudioSpeed(s["speeds"], sr),
        ]
        if features == "log_mel":
            views.append(LogMelView(sr, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels))
        elif features == "mfcc":
            views.append(
                MFCCView(sr, n_mfcc=n_mfcc, n_mels=n_mels, n_fft=n_fft, hop_length=hop_length)
            )
        if features != "waveform":
            views.append(SpecAugment(s["freq"][0], s["freq"][1], s["time"][0], s["time"][1]))
        super().__init__(views)
        self.strength, self.features, self.sample_rate = strength, features, sample_rate


class ViewSet(nn.Module):
    """M view pipelines, one per view: ``view_set(x, generator=g)`` returns a list of M
    outputs (their lengths may differ, as in multi-crop)."""

    def __init__(self, pipelines: Sequence[nn.Module]) -> None:
        super().__init__()
        if not pipelines:
            raise ValueError("view set: needs at least one pipeline")
        self.pipelines = nn.ModuleList(pipelines)

    def __len__(self) -> int:
        return len(self.pipelines)

    def forward(self, x: Tensor, *, generator: torch.Generator | None = None) -> list[Tensor]:
        return [pipeline(x, generator=generator) for pipeline in self.pipelines]


def view_set(
    name: str = "two_view",
    *,
    num_views: int | None = None,
    global_seconds: float = 1.0,
    local_seconds: float = 0.5,
    **options: Any,
) -> ViewSet:
    """The pipelines of a multi-view setting.

    Args:
        name: ``"two_view"`` (2 independent :class:`SpeechAugment` draws, SimCLR style),
            ``"multi_view"`` (``num_views`` draws, default 4; for MV-InfoNCE / MV-DHEL) or
            ``"multi_crop"`` (2 crops of ``global_seconds`` and ``num_views - 2`` crops of
            ``local_seconds``, default 6 views in all; DINO / SwAV style).
        num_views: how many views (not for ``"two_view"``).
        global_seconds, local_seconds: the crop lengths of ``"multi_crop"``.
        **options: passed to every :class:`SpeechAugment` (``strength``, ``features``,
            ``sample_rate``, ``n_mels``...).
    """
    if name == "two_view":
        if num_views not in (None, 2):
            raise ValueError(f"view set 'two_view' has 2 views, got num_views={num_views}")
        return ViewSet([SpeechAugment(**options) for _ in range(2)])
    if name == "multi_view":
        m = 4 if num_views is None else int(num_views)
        if m < 2:
            raise ValueError(f"view set 'multi_view' needs num_views >= 2, got {m}")
        return ViewSet([SpeechAugment(**options) for _ in range(m)])
    if name == "multi_crop":
        m = 6 if num_views is None else int(num_views)
        if m < 2:
            raise ValueError(f"view set 'multi_crop' needs num_views >= 2, got {m}")
        crops = [global_seconds] * 2 + [local_seconds] * (m - 2)
        return ViewSet([SpeechAugment(crop_seconds=c, **options) for c in crops])
    raise ValueError(f"unknown view set {name!r}; choose 'two_view', 'multi_view' or 'multi_crop'")
