"""The ``speech_augment`` view: shift, gain, noise and speed on the waveform, then log-mel
or MFCC features with SpecAugment, in one step with strength presets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from manyview_speech.views.features import LogMelView, MFCCView
from manyview_speech.views.spec_augment import SpecAugment
from manyview_speech.views.waveform import AudioCrop, AudioGain, AudioNoise, AudioShift, AudioSpeed

__all__ = ["Compose", "SpeechAugment"]


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
