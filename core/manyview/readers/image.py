"""The ``image`` reader: image files through Pillow to float32 ``(C, H, W)`` in [0, 1].

Pillow is imported when the first file is read. A file that exists but cannot be used
raises :class:`~manyview.datasets.files.DataFileError` naming it and the reason.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from manyview.datasets.files import IMAGE_EXTENSIONS, DataFileError, image_size_pair

__all__ = ["MODES", "ImageReader", "read_image"]

MODES: tuple[str, ...] = ("RGB", "L", "RGBA", "LA")
"""Pillow modes an image can be converted to: colour, grey, and each with alpha."""


def _pil() -> Any:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow comes with torchvision
        raise ImportError("reading images needs Pillow: pip install pillow") from None
    return Image


def _check_mode(mode: Any, who: str) -> None:
    if mode not in MODES:
        raise ValueError(f"{who}: mode must be one of {', '.join(map(repr, MODES))}, got {mode!r}")


def read_image(
    path: str | os.PathLike[str],
    *,
    mode: str = "RGB",
    size: tuple[int, int] | None = None,
) -> Tensor:
    """An image file as float32 ``(C, H, W)`` in [0, 1].

    Args:
        mode: Pillow's mode to convert to: ``"RGB"`` (C = 3), ``"L"`` (grey, C = 1),
            ``"RGBA"`` or ``"LA"`` (with alpha).
        size: resize to ``(height, width)`` (bilinear); ``None`` keeps the file's size.

    Raises:
        ValueError: a mode that is not one of :data:`MODES`.
        FileNotFoundError: no such file.
        DataFileError: empty, truncated, corrupt or not an image; the message names the file.
    """
    import numpy as np

    _check_mode(mode, "read_image")
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


class ImageReader:
    """Reads image files as float32 ``(C, H, W)`` in [0, 1] (``manyview.create("reader",
    "image", ...)``).

    Args:
        mode: Pillow's mode to convert to (:data:`MODES`): ``"RGB"`` (C = 3), ``"L"``
            (grey, C = 1), ``"RGBA"`` or ``"LA"`` (with alpha).
        size: resize every image to this, an int or ``(height, width)`` (bilinear);
            ``None`` keeps each file's size.

    Call it with a path; it raises ``FileNotFoundError`` for a missing file and
    :class:`~manyview.datasets.files.DataFileError` for one that cannot be read.
    """

    suffixes: tuple[str, ...] = IMAGE_EXTENSIONS
    """The file endings it reads."""

    def __init__(self, *, mode: str = "RGB", size: int | Sequence[int] | None = None) -> None:
        _check_mode(mode, "image reader")
        self.mode = mode
        self.size = image_size_pair(size, "image reader")

    def __call__(self, path: str | os.PathLike[str]) -> Tensor:
        return read_image(path, mode=self.mode, size=self.size)

    def __repr__(self) -> str:
        return f"ImageReader(mode={self.mode!r}, size={self.size})"
