"""A folder of audio files, one subfolder per class (``root/<class>/*.wav``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from manyview.datasets.files import (
    SkippingDataset,
    audio_clip,
    check_extensions,
    check_on_error,
    class_files,
    class_ids,
    skip_or_raise,
    warn_skipped,
)
from manyview.options import check_choice
from manyview_speech.audio import (
    AUDIO_EXTENSIONS,
    AudioFileError,
    fit_length,
    load_many,
    read_audio,
)


class AudioFolder(SkippingDataset):
    """Audio files under ``root``, labelled by their subfolder (sorted names give the class
    ids; folders whose names start with ``.`` are not classes); files directly in ``root``
    form one class, ``"."``. Mono (channels are mixed down),
    resampled to ``sample_rate`` and cut or zero-padded to ``clip_seconds``.

    Files that cannot be read (empty, corrupt, sample rate 0, no samples) are skipped and
    counted with ``on_error="skip"`` (the default): :attr:`skipped` lists ``(path, reason)``
    and one warning gives the count. With ``on_error="raise"`` the first one raises
    :class:`~manyview_speech.audio.AudioFileError` naming the file.

    Items: ``{"audio": float32 (samples,), "label": int, "index": int}``.

    Args:
        root: the folder.
        sample_rate: resample every file to this rate.
        clip_seconds: the clip length.
        align: ``"start"`` or ``"center"``: where a long file is cut, a short one padded.
        extensions: file endings to read.
        on_error: ``"skip"`` or ``"raise"``.
        preload: read every file now (errors found at once); ``False`` checks only the
            headers now and reads each file when it is indexed.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        sample_rate: int = 16000,
        clip_seconds: float = 1.0,
        align: str = "start",
        extensions: Sequence[str] = AUDIO_EXTENSIONS,
        on_error: str = "skip",
        preload: bool = True,
    ) -> None:
        who = "audiofolder"
        check_on_error(on_error, who)
        sample_rate, samples = audio_clip(sample_rate, clip_seconds, who)
        check_choice(align, ("start", "center"), "align", who)
        exts = check_extensions(extensions, who)
        if not isinstance(preload, bool):
            raise ValueError(f"{who}: preload must be true or false, got {preload!r}")
        root = Path(root)
        if not root.is_dir():
            raise ValueError(f"{who}: {root} is not a folder")
        found, _ = class_files(root, exts, loose_class=".")
        if not found:
            raise ValueError(f"audiofolder: no {'/'.join(exts)} files under {root}")
        self.root, self.sample_rate, self.align = root, sample_rate, align
        self.samples = samples
        self.skipped: list[tuple[str, str]] = []
        if preload:
            waves, kept, self.skipped = load_many(
                [p for p, _ in found], sample_rate=sample_rate, on_error=on_error
            )
            self.audio: torch.Tensor | None = (
                torch.stack([fit_length(w, self.samples, align=align) for w in waves])
                if waves
                else None
            )
        else:
            kept = []
            for i, (path, _) in enumerate(found):
                problem = _header_problem(path)
                if problem is None:
                    kept.append(i)
                else:
                    skip_or_raise(self.skipped, str(path), problem, on_error, None, AudioFileError)
            self.audio = None
        if not kept:
            raise ValueError(
                f"audiofolder: none of the {len(found)} files under {root} could be read "
                f"(first: {self.skipped[0][1]})"
            )
        warn_skipped(
            self.skipped,
            "audiofolder",
            f"of {len(found)} files under {root} that could not be read",
        )
        self.paths = [found[i][0] for i in kept]
        self.classes, self.labels = class_ids([found[i][1] for i in kept])
        self.num_classes = len(self.classes)

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, i: int) -> torch.Tensor:
        """Clip ``i`` as ``(samples,)``."""
        if self.audio is not None:
            return self.audio[i]
        wave, _ = read_audio(self.paths[i], sample_rate=self.sample_rate)
        return fit_length(wave, self.samples, align=self.align)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"audio": self.load(i), "label": int(self.labels[i]), "index": int(i)}


def _header_problem(path: Path) -> str | None:
    """Why ``path``'s header is unusable, or ``None`` when it looks fine."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except (RuntimeError, OSError, ValueError, TypeError):
        try:
            read_audio(path)
        except (AudioFileError, FileNotFoundError) as exc:
            return str(exc)
        return None
    if info.samplerate <= 0:
        return f"{path}: cannot read audio: the sample rate is {info.samplerate}"
    if info.frames == 0:
        return f"{path}: the file holds no samples (0 frames)"
    return None
