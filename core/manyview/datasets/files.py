"""Reading a user's files for the ``manifest`` and ``imagefolder`` datasets.

Images go through Pillow (imported when first needed) to float32 ``(C, H, W)`` in [0, 1];
audio through the speech plugin's :mod:`manyview_speech.audio` (also imported lazily). A
file that exists but cannot be used raises :class:`DataFileError` naming it and the reason.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "IMAGE_EXTENSIONS",
    "DataFileError",
    "check_on_error",
    "image_size_pair",
    "read_audio_clip",
    "read_image",
]

IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm",
)  # fmt: skip
"""File endings the ``imagefolder`` dataset picks up."""


class DataFileError(ValueError):
    """A data file or manifest row could not be used; the message says where and why."""


def check_on_error(on_error: str, who: str) -> None:
    if on_error not in ("skip", "raise"):
        raise ValueError(f"{who}: on_error must be 'skip' or 'raise', got {on_error!r}")


def image_size_pair(size: int | Sequence[int] | None, who: str) -> tuple[int, int] | None:
    """``None``, or ``(height, width)`` from an int or a pair."""
    if size is None:
        return None
    pair = (size, size) if isinstance(size, int) else tuple(size)
    if len(pair) != 2 or any(not isinstance(s, int) or isinstance(s, bool) or s < 1 for s in pair):
        raise ValueError(
            f"{who}: image_size must be a positive int or (height, width), got {size!r}"
        )
    return int(pair[0]), int(pair[1])


def _pil() -> Any:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow comes with torchvision
        raise ImportError("reading images needs Pillow: pip install pillow") from None
    return Image


def read_image(
    path: str | os.PathLike[str],
    *,
    mode: str = "RGB",
    size: tuple[int, int] | None = None,
) -> Tensor:
    """An image file as float32 ``(C, H, W)`` in [0, 1].

    Args:
        mode: Pillow's mode to convert to: ``"RGB"`` (C = 3), ``"L"`` (grey, C = 1), ``"RGBA"``.
        size: resize to ``(height, width)`` (bilinear); ``None`` keeps the file's size.

    Raises:
        FileNotFoundError: no such file.
        DataFileError: empty, truncated, corrupt or not an image; the message names the file.
    """
    import numpy as np

    image_mod = _pil()
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such image file")
    if path.is_dir():
        raise DataFileError(f"{path}: cannot read image: it is a folder, not a file")
    if path.stat().st_size == 0:
        raise DataFileError(f"{path}: cannot read image: the file is empty (0 bytes)")
    try:
        with image_mod.open(path) as img:
            img.load()
            img = img.convert(mode)
            if size is not None and img.size != (size[1], size[0]):
                img = img.resize((size[1], size[0]), image_mod.Resampling.BILINEAR)
            array = np.asarray(img, dtype=np.uint8)
    except PermissionError:
        raise DataFileError(f"{path}: cannot read image: permission denied") from None
    except (OSError, ValueError, SyntaxError, image_mod.DecompressionBombError) as exc:
        raise DataFileError(
            f"{path}: cannot read image: corrupt, truncated or not an image ({exc})"
        ) from None
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.copy()).permute(2, 0, 1).to(torch.float32) / 255.0


def read_audio_clip(
    path: str | os.PathLike[str], *, sample_rate: int, samples: int, align: str = "start"
) -> Tensor:
    """An audio file, mono, at ``sample_rate``, cut or padded to ``samples``.

    Raises:
        ImportError: the speech plugin is not installed.
        FileNotFoundError, DataFileError: as :func:`read_image`.
    """
    try:
        from manyview_speech.audio import AudioFileError, fit_length, read_audio
    except ImportError as exc:
        raise ImportError(
            f"reading audio files needs the speech plugin: pip install manyview-speech ({exc})"
        ) from None
    try:
        wave, _ = read_audio(path, sample_rate=sample_rate)
    except AudioFileError as exc:
        raise DataFileError(str(exc)) from None
    return fit_length(wave, samples, align=align)
