"""Audio files in and out through soundfile (libsndfile), mono mixdown and resampling.

``torchaudio.load`` needs torchcodec and FFmpeg in current torchaudio; soundfile's wheel
bundles libsndfile, so WAV, FLAC and OGG work with no system package. Waveforms are torch
tensors, channels first: ``(samples,)`` mono or ``(channels, samples)``.

A file that exists but cannot be used (empty, a corrupt header, a sample rate of 0, no
samples, NaN) raises :class:`AudioFileError` naming the file and the reason; datasets can
skip and count such files instead (:func:`load_many`).
"""

from __future__ import annotations

import functools
import os
import struct
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from manyview.options import check_int

__all__ = [
    "AUDIO_EXTENSIONS",
    "AudioFileError",
    "fit_length",
    "load_many",
    "read_audio",
    "resample",
    "to_mono",
    "write_audio",
]

AUDIO_EXTENSIONS: tuple[str, ...] = (".wav", ".flac", ".ogg", ".aiff", ".aif")
"""File endings :func:`load_many` and the ``audiofolder`` dataset pick up."""


class AudioFileError(ValueError):
    """An audio file could not be used; the message names the file and says why."""


def _soundfile() -> Any:
    try:
        import soundfile
    except ImportError:  # pragma: no cover - a dependency of manyview-speech
        raise ImportError("audio IO needs the soundfile package: pip install soundfile") from None
    return soundfile


def _wav_header_problem(path: Path) -> str | None:
    """A plain-words reason for a WAV header libsndfile rejects, when we can tell."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return None
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX", b"RF64") or head[8:12] != b"WAVE":
        if head[:4] in (b"RIFF", b"RIFX", b"RF64"):
            return "a RIFF file that is not WAVE"
        return None
    pos = 12
    while pos + 8 <= len(head):
        chunk, size = head[pos : pos + 4], struct.unpack("<I", head[pos + 4 : pos + 8])[0]
        if chunk == b"fmt ":
            if pos + 16 > len(head):
                return "the header is cut off inside its 'fmt ' chunk"
            channels, rate = struct.unpack("<HI", head[pos + 10 : pos + 16])
            if rate == 0:
                return "the header gives a sample rate of 0"
            if channels == 0:
                return "the header gives 0 channels"
            return None
        pos += 8 + size + (size & 1)
    return None


def _open_error(path: Path, exc: BaseException) -> AudioFileError:
    if path.is_dir():
        reason = "it is a folder, not a file"
    elif path.stat().st_size == 0:
        reason = "the file is empty (0 bytes)"
    elif not os.access(path, os.R_OK):
        reason = "permission denied"
    else:
        reason = (
            _wav_header_problem(path) or "not a readable audio file (corrupt or unknown format)"
        )
    detail = str(exc).replace(f"Error opening {str(path)!r}: ", "")
    return AudioFileError(f"{path}: cannot read audio: {reason} (libsndfile: {detail})")


def read_audio(
    path: str | os.PathLike[str],
    *,
    sample_rate: int | None = None,
    mono: bool = True,
) -> tuple[Tensor, int]:
    """Read an audio file as float32.

    Args:
        path: a WAV, FLAC, OGG or AIFF file.
        sample_rate: resample to this rate (``None``: keep the file's).
        mono: mix the channels down to one (their mean) and return ``(samples,)``; with
            ``False`` return ``(channels, samples)``.

    Returns:
        ``(waveform, rate)``: float32 samples in [-1, 1] and their sample rate.

    Raises:
        FileNotFoundError: no such file.
        AudioFileError: the file is empty, corrupt, has a sample rate of 0, no samples, or
            non-finite samples; the message names the file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such audio file")
    sf = _soundfile()
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, OSError, ValueError, TypeError) as exc:
        raise _open_error(path, exc) from None
    if rate <= 0:
        raise AudioFileError(f"{path}: cannot read audio: the sample rate is {rate}")
    if data.shape[0] == 0:
        raise AudioFileError(f"{path}: the file holds no samples (0 frames)")
    wave = torch.from_numpy(data.T.copy())  # (channels, samples)
    if not torch.isfinite(wave).all():
        raise AudioFileError(f"{path}: the file contains NaN or infinite samples")
    if mono:
        wave = to_mono(wave)
    if sample_rate is not None and sample_rate != rate:
        wave = resample(wave, rate, sample_rate)
        rate = int(sample_rate)
    return wave, int(rate)


def write_audio(
    path: str | os.PathLike[str],
    waveform: Tensor | Any,
    sample_rate: int,
    *,
    subtype: str | None = None,
) -> Path:
    """Write ``(samples,)`` or ``(channels, samples)`` audio; the format follows the suffix.

    Args:
        path: ``.wav``, ``.flac``, ``.ogg``...; parent folders are created.
        waveform: float samples in [-1, 1] (a tensor or an array).
        sample_rate: a positive rate in Hz.
        subtype: soundfile's subtype (``"PCM_16"``, ``"PCM_24"``, ``"FLOAT"``...);
            ``None``: the format's default (16-bit PCM for WAV and FLAC).

    Raises:
        ValueError: a sample rate that is not positive, a batch or empty waveform, NaN.
    """
    path = Path(path)
    check_int(sample_rate, "sample_rate", f"write_audio {path}")
    x = torch.as_tensor(waveform).detach().cpu()
    if x.dim() not in (1, 2):
        raise ValueError(
            f"write_audio {path}: expects (samples,) or (channels, samples), got {tuple(x.shape)}"
        )
    if x.numel() == 0:
        raise ValueError(f"write_audio {path}: the waveform is empty")
    if not x.is_floating_point():
        raise ValueError(f"write_audio {path}: expects float samples in [-1, 1], got {x.dtype}")
    if not torch.isfinite(x).all():
        raise ValueError(f"write_audio {path}: the waveform contains NaN or inf")
    x = x.to(torch.float32)
    if x.dim() == 2 and x.shape[0] > x.shape[1]:
        raise ValueError(
            f"write_audio {path}: got {tuple(x.shape)}, more channels than samples; "
            "pass (channels, samples)"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    data = x.numpy() if x.dim() == 1 else x.T.numpy()
    try:
        _soundfile().write(str(path), data, sample_rate, subtype=subtype)
    except (RuntimeError, ValueError, TypeError) as exc:
        raise ValueError(f"write_audio {path}: {exc}") from None
    return path


def to_mono(waveform: Tensor) -> Tensor:
    """Mix channels down by their mean: ``(C, T) -> (T,)``, ``(N, C, T) -> (N, T)``;
    ``(T,)`` is returned as it is."""
    if not isinstance(waveform, Tensor):
        raise ValueError(f"to_mono: expects a tensor, got {type(waveform).__name__}")
    if waveform.dim() == 1:
        return waveform
    if waveform.dim() in (2, 3):
        return waveform.mean(dim=-2)
    raise ValueError(
        f"to_mono: expects (samples,), (channels, samples) or (batch, channels, samples), "
        f"got {tuple(waveform.shape)}"
    )


def _check_rate(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"resample: {name} must be a positive number of Hz, got {value!r}")
    if not float(value).is_integer():
        raise ValueError(f"resample: {name} must be a whole number of Hz, got {value!r}")
    return int(value)


def resample(waveform: Tensor, orig_freq: int, new_freq: int) -> Tensor:
    """Band-limited resampling along the last dimension (``torchaudio.functional.resample``,
    windowed sinc), on the input's device.

    Raises:
        ValueError: a rate that is not a positive whole number (a sample rate of 0), or a
            waveform that is not a float tensor.
    """
    orig = _check_rate(orig_freq, "orig_freq")
    new = _check_rate(new_freq, "new_freq")
    if not isinstance(waveform, Tensor) or not waveform.is_floating_point():
        kind = waveform.dtype if isinstance(waveform, Tensor) else type(waveform).__name__
        raise ValueError(f"resample: expects a float tensor, got {kind}")
    if orig == new:
        return waveform
    if waveform.shape[-1] == 0:
        raise ValueError("resample: the waveform is empty")
    dtype = waveform.dtype if waveform.dtype == torch.float64 else torch.float32
    out = _resampler(orig, new, waveform.device, dtype)(waveform.to(dtype))
    return out.to(waveform.dtype)


@functools.lru_cache(maxsize=32)
def _resampler(orig: int, new: int, device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
    """torchaudio's ``Resample`` (its sinc kernel is built once per rate pair, device, dtype;
    building it is most of the cost of resampling one clip)."""
    import torchaudio.transforms as T

    return T.Resample(orig, new, dtype=dtype).to(device)


def speed_ratio(factor: float, max_denominator: int = 50) -> tuple[int, int]:
    """``(orig, new)`` integer rates whose ratio ``orig/new`` is ``factor`` (approximately)."""
    frac = Fraction(float(factor)).limit_denominator(max_denominator)
    return frac.numerator, frac.denominator


def fit_length(waveform: Tensor, samples: int, *, align: str = "start") -> Tensor:
    """Zero-pad or cut the last dimension to ``samples``.

    Args:
        align: ``"start"`` keeps the beginning (pads or cuts at the end); ``"center"`` keeps
            the middle (pads or cuts both ends evenly).
    """
    if samples < 1:
        raise ValueError(f"fit_length: samples must be >= 1, got {samples}")
    if align not in ("start", "center"):
        raise ValueError(f"fit_length: align must be 'start' or 'center', got {align!r}")
    t = waveform.shape[-1]
    if t == samples:
        return waveform
    if t > samples:
        start = (t - samples) // 2 if align == "center" else 0
        return waveform[..., start : start + samples]
    left = (samples - t) // 2 if align == "center" else 0
    return torch.nn.functional.pad(waveform, (left, samples - t - left))


def trim_silence(waveform: Tensor, *, threshold_db: float = -40.0, frame: int = 256) -> Tensor:
    """Cut leading and trailing frames quieter than ``threshold_db`` below the peak frame
    (1-D mono). An all-silent waveform is returned as it is."""
    if waveform.dim() != 1:
        raise ValueError(f"trim_silence: expects mono (samples,), got {tuple(waveform.shape)}")
    n = waveform.shape[0] // frame
    if n == 0:
        return waveform
    energy = waveform[: n * frame].reshape(n, frame).pow(2).mean(1)
    peak = float(energy.max())
    if peak <= 0:
        return waveform
    loud = (energy >= peak * 10 ** (threshold_db / 10)).nonzero().flatten()
    return waveform[int(loud[0]) * frame : (int(loud[-1]) + 1) * frame]


def load_many(
    paths: Iterable[str | os.PathLike[str]],
    *,
    sample_rate: int | None = None,
    on_error: str = "skip",
) -> tuple[list[Tensor], list[int], list[tuple[str, str]]]:
    """Read many files as mono, skipping (and counting) those that cannot be read.

    Args:
        paths: the files.
        sample_rate: resample each to this rate (``None``: keep each file's).
        on_error: ``"skip"`` records a bad file and goes on; ``"raise"`` stops at it.

    Returns:
        ``(waveforms, kept, skipped)``: the waveforms read, the positions in ``paths`` they
        came from, and ``(path, reason)`` for every file skipped.
    """
    if on_error not in ("skip", "raise"):
        raise ValueError(f"load_many: on_error must be 'skip' or 'raise', got {on_error!r}")
    waves: list[Tensor] = []
    kept: list[int] = []
    skipped: list[tuple[str, str]] = []
    for i, path in enumerate(paths):
        try:
            wave, _ = read_audio(path, sample_rate=sample_rate, mono=True)
        except (AudioFileError, FileNotFoundError) as exc:
            if on_error == "raise":
                raise
            skipped.append((str(path), str(exc)))
            continue
        waves.append(wave)
        kept.append(i)
    return waves, kept, skipped
