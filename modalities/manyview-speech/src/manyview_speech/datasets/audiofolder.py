"""A folder of audio files, one subfolder per class (``root/<class>/*.wav``)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from manyview_speech.audio import (
    AUDIO_EXTENSIONS,
    AudioFileError,
    fit_length,
    load_many,
    read_audio,
)


class AudioFolder(Dataset):
    """Audio files under ``root``, labelled by their subfolder (sorted names give the class
    ids); files directly in ``root`` form one class. Mono (channels are mixed down),
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
        root = Path(root)
        if not root.is_dir():
            raise ValueError(f"audiofolder: {root} is not a folder")
        if on_error not in ("skip", "raise"):
            raise ValueError(f"audiofolder: on_error must be 'skip' or 'raise', got {on_error!r}")
        exts = tuple(e.lower() for e in extensions)
        found: list[tuple[Path, str]] = []
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.suffix.lower() in exts:
                rel = path.relative_to(root)
                found.append((path, rel.parts[0] if len(rel.parts) > 1 else "."))
        if not found:
            raise ValueError(f"audiofolder: no {'/'.join(exts)} files under {root}")
        self.root, self.sample_rate, self.align = root, sample_rate, align
        self.samples = max(1, round(clip_seconds * sample_rate))
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
                elif on_error == "raise":
                    raise AudioFileError(problem)
                else:
                    self.skipped.append((str(path), problem))
            self.audio = None
        if not kept:
            raise ValueError(
                f"audiofolder: none of the {len(found)} files under {root} could be read "
                f"(first: {self.skipped[0][1]})"
            )
        if self.skipped:
            warnings.warn(
                f"audiofolder: skipped {len(self.skipped)} of {len(found)} files under {root} "
                f"that could not be read (first: {self.skipped[0][1]}); see dataset.skipped",
                stacklevel=2,
            )
        self.paths = [found[i][0] for i in kept]
        self.classes = sorted({found[i][1] for i in kept})
        index = {c: k for k, c in enumerate(self.classes)}
        self.labels = torch.tensor([index[found[i][1]] for i in kept])
        self.num_classes = len(self.classes)

    @property
    def num_skipped(self) -> int:
        return len(self.skipped)

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
