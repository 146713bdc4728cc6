"""Log-mel and MFCC features of waveform batches (``torchaudio.transforms``).

Both take mono waveforms ``(N, samples)`` (or one ``(samples,)``) and return
``(N, n_features, frames)`` in float32 or wider, on the input's device (the module follows
its input there), computed per sample: nothing depends on the other rows of the batch.
``frames = samples // hop_length + 1`` (centred frames).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from manyview.options import check_ints, check_positive


def check_waveforms(x: object, who: str) -> Tensor:
    """``x`` as a float ``(N, samples)`` batch, or a ValueError saying what is wrong."""
    if not isinstance(x, Tensor):
        raise ValueError(f"{who}: expects a waveform tensor (N, samples), got {type(x).__name__}")
    if x.dim() == 3:
        raise ValueError(
            f"{who}: expects mono waveforms (N, samples), got {tuple(x.shape)}; mix the "
            "channels down first (manyview_speech.audio.to_mono)"
        )
    if x.dim() != 2:
        hint = "; add a batch dimension: x[None]" if x.dim() == 1 else ""
        raise ValueError(f"{who}: expects waveforms (N, samples), got {tuple(x.shape)}{hint}")
    if not x.is_floating_point():
        raise ValueError(f"{who}: expects float samples in [-1, 1], got {x.dtype}")
    if x.shape[1] == 0:
        raise ValueError(f"{who}: the waveforms are empty (0 samples)")
    return x


def _follow(module: nn.Module, x: Tensor) -> None:
    """Move ``module``'s buffers to ``x``'s device and float dtype when they differ."""
    dtype = x.dtype if x.dtype == torch.float64 else torch.float32
    buf = next((b for b in module.buffers() if b.is_floating_point()), None)
    if buf is not None and (buf.device != x.device or buf.dtype != dtype):
        module.to(device=x.device, dtype=dtype)


class _Features(nn.Module):
    """Base of the feature modules: :meth:`forward` checks the waveforms, follows them to
    their device and float dtype, pads ones too short for the STFT and computes
    :meth:`_compute` without autocast; one waveform ``(samples,)`` gives one result."""

    _who = "features"
    n_fft: int

    def forward(self, x: Tensor) -> Tensor:
        single = isinstance(x, Tensor) and x.dim() == 1
        x = check_waveforms(x[None] if single else x, self._who)
        _follow(self, x)
        with torch.autocast(x.device.type, enabled=False):
            x = x if x.dtype == torch.float64 else x.float()
            out = self._compute(_pad_short(x, self.n_fft))
        return out[0] if single else out

    def _compute(self, x: Tensor) -> Tensor:
        """The features of checked float waveforms ``(N, samples)``."""
        raise NotImplementedError


class LogMel(_Features):
    """Log mel spectrogram: ``log(mel_power + log_offset)``, ``(N, samples) -> (N, n_mels,
    frames)``.

    Args:
        sample_rate: the waveforms' rate in Hz.
        n_fft: FFT size (400 = 25 ms at 16 kHz).
        hop_length: frame step in samples (160 = 10 ms at 16 kHz).
        win_length: window size (``None``: ``n_fft``).
        n_mels: mel bands.
        f_min: lowest band edge in Hz.
        f_max: highest band edge in Hz (``None``: half the sample rate).
        log_offset: added before the log, so silence stays finite.
    """

    _who = "log_mel"

    def __init__(
        self,
        sample_rate: int = 16000,
        n_fft: int = 400,
        hop_length: int = 160,
        win_length: int | None = None,
        n_mels: int = 64,
        f_min: float = 0.0,
        f_max: float | None = None,
        log_offset: float = 1e-6,
    ) -> None:
        super().__init__()
        import torchaudio.transforms as T

        check_ints(
            "log_mel", sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels
        )
        check_positive(log_offset, "log_offset", "log_mel")
        self.mel = T.MelSpectrogram(
            sample_rate=sample_rate,
            n_fft=n_fft,
            win_length=win_length,
            hop_length=hop_length,
            f_min=f_min,
            f_max=f_max,
            n_mels=n_mels,
        )
        self.sample_rate, self.hop_length, self.n_mels = sample_rate, hop_length, n_mels
        self.n_fft = n_fft
        self.log_offset = float(log_offset)

    def _compute(self, x: Tensor) -> Tensor:
        return torch.log(self.mel(x) + self.log_offset)


class MFCC(_Features):
    """Mel-frequency cepstral coefficients, ``(N, samples) -> (N, n_mfcc, frames)``.

    torchaudio's MFCC in decibels with an 80 dB floor, where the floor is taken per sample
    (torchaudio's own takes it over the whole batch of a 2-D input).

    Args:
        sample_rate: the waveforms' rate in Hz.
        n_mfcc: coefficients kept.
        n_mels: mel bands before the DCT.
        n_fft: FFT size.
        hop_length: frame step in samples.
        log_mels: natural log of the mel power instead of decibels.
    """

    _who = "mfcc"

    def __init__(
        self,
        sample_rate: int = 16000,
        n_mfcc: int = 40,
        n_mels: int = 64,
        n_fft: int = 400,
        hop_length: int = 160,
        log_mels: bool = False,
    ) -> None:
        super().__init__()
        import torchaudio.transforms as T

        check_ints(
            "mfcc",
            sample_rate=sample_rate,
            n_mfcc=n_mfcc,
            n_mels=n_mels,
            n_fft=n_fft,
            hop_length=hop_length,
        )
        if n_mfcc > n_mels:
            raise ValueError(f"mfcc: n_mfcc ({n_mfcc}) cannot exceed n_mels ({n_mels})")
        self.mfcc = T.MFCC(
            sample_rate=sample_rate,
            n_mfcc=n_mfcc,
            log_mels=log_mels,
            melkwargs={"n_fft": n_fft, "hop_length": hop_length, "n_mels": n_mels},
        )
        self.sample_rate, self.hop_length, self.n_mfcc = sample_rate, hop_length, n_mfcc
        self.n_fft = n_fft

    def _compute(self, x: Tensor) -> Tensor:
        return self.mfcc(x[:, None]).squeeze(1)  # (N, 1, T): the dB floor is per sample


def _pad_short(x: Tensor, n_fft: int) -> Tensor:
    """Zero-pad waveforms too short for the centred STFT's reflection padding."""
    need = n_fft // 2 + 1
    return x if x.shape[-1] >= need else torch.nn.functional.pad(x, (0, need - x.shape[-1]))
