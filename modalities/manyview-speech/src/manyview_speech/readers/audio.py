"""The ``audio`` reader: audio files through soundfile to mono float32 waveforms at one rate.

Registered under the reader kind, so datasets of the core that read a user's files (the
``manifest`` dataset's audio columns) decode audio through it::

    read = manyview.create("reader", "audio", sample_rate=16000, samples=16000)
    wave = read("clips/001.wav")  # float32 (16000,), resampled, cut or zero-padded
"""

from __future__ import annotations

import os

from torch import Tensor

from manyview.options import check_int
from manyview_speech.audio import AUDIO_EXTENSIONS, fit_length, read_audio

__all__ = ["AudioReader"]


class AudioReader:
    """Reads audio files as mono float32 ``(samples,)`` in [-1, 1] at ``sample_rate``.

    Args:
        sample_rate: resample every file to this rate (Hz).
        samples: cut or zero-pad every clip to this many samples; ``None`` keeps each
            file's length.
        align: where a clip is cut or padded: ``"start"`` keeps the beginning, ``"center"``
            the middle.

    Call it with a path; it raises ``FileNotFoundError`` for a missing file and
    :class:`~manyview_speech.audio.AudioFileError` (a ``ValueError``) naming the file for
    one that is empty, corrupt, has no samples or non-finite samples.
    """

    suffixes: tuple[str, ...] = AUDIO_EXTENSIONS
    """The file endings it reads."""

    def __init__(
        self, *, sample_rate: int = 16000, samples: int | None = None, align: str = "start"
    ) -> None:
        self.sample_rate = check_int(sample_rate, "sample_rate", "audio reader")
        self.samples = None if samples is None else check_int(samples, "samples", "audio reader")
        if align not in ("start", "center"):
            raise ValueError(f"audio reader: align must be 'start' or 'center', got {align!r}")
        self.align = align

    def __call__(self, path: str | os.PathLike[str]) -> Tensor:
        wave, _ = read_audio(path, sample_rate=self.sample_rate)
        return wave if self.samples is None else fit_length(wave, self.samples, align=self.align)

    def __repr__(self) -> str:
        return (
            f"AudioReader(sample_rate={self.sample_rate}, samples={self.samples}, "
            f"align={self.align!r})"
        )
