"""Shared pieces of the datasets that read a user's files (``manifest``, ``imagefolder``).

The files themselves are decoded by the registered readers (:mod:`manyview.readers`). A file
or row that cannot be used raises :class:`DataFileError` naming it and the reason.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["IMAGE_EXTENSIONS", "DataFileError", "check_on_error", "image_size_pair"]

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
