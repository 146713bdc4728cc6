"""A folder of images, one subfolder per class (``root/<class>/**/*.png``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from manyview.datasets.files import (
    IMAGE_EXTENSIONS,
    DataFileError,
    SkippingDataset,
    check_extensions,
    check_image_mode,
    check_on_error,
    class_files,
    class_ids,
    image_size_pair,
    skip_or_raise,
    warn_skipped,
)
from manyview.readers.image import read_image

__all__ = ["ImageFolder"]


class ImageFolder(SkippingDataset):
    """Image files under ``root/<class>/`` (any depth below the class folder), labelled by
    class folder: the sorted folder names give the class ids. Files directly in ``root`` and
    files with other endings are ignored. Every image is read now, converted to
    ``image_mode`` and optionally resized, as float32 ``(C, H, W)`` in [0, 1].

    Files that cannot be read (empty, truncated, corrupt) and class folders with no image
    files are skipped and counted with ``on_error="skip"`` (the default): :attr:`skipped`
    lists ``(path, reason)``, :attr:`num_skipped` counts them, and one warning gives the
    count. With ``on_error="raise"`` the first one raises :class:`DataFileError` naming it.

    Items: ``{"image": float32 (C, H, W), "label": int, "index": int}``.

    Args:
        root: the folder.
        image_size: resize every image to this (an int or ``(height, width)``); ``None``
            keeps the files' sizes, which must then all be equal.
        image_mode: Pillow mode: ``"RGB"`` (3 channels), ``"L"`` (grey, 1) or ``"RGBA"``.
        extensions: file endings to read.
        on_error: ``"skip"`` or ``"raise"``.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        image_size: int | Sequence[int] | None = None,
        image_mode: str = "RGB",
        extensions: Sequence[str] = IMAGE_EXTENSIONS,
        on_error: str = "skip",
    ) -> None:
        who = "imagefolder"
        check_on_error(on_error, who)
        size = image_size_pair(image_size, who)
        check_image_mode(image_mode, who)
        exts = check_extensions(extensions, who)
        root = Path(root)
        if not root.is_dir():
            raise ValueError(f"{who}: {root} is not a folder")
        found, empty = class_files(root, exts)
        if not found and not empty:
            raise ValueError(
                f"{who}: {root} has no class subfolders (expected {root}/<class>/<image file>)"
            )
        self.skipped: list[tuple[str, str]] = []
        for folder in empty:
            reason = f"{folder}: class folder {folder.name!r} holds no {'/'.join(exts)} files"
            skip_or_raise(self.skipped, str(folder), reason, on_error, who)
        if not found:
            raise ValueError(f"{who}: no {'/'.join(exts)} files in the class folders of {root}")
        images: list[Tensor] = []
        kept: list[tuple[Path, str]] = []
        for path, cls in found:
            try:
                images.append(read_image(path, mode=image_mode, size=size))
            except (DataFileError, FileNotFoundError) as exc:
                skip_or_raise(self.skipped, str(path), str(exc), on_error, who)
                continue
            kept.append((path, cls))
        if not kept:
            raise ValueError(
                f"{who}: none of the {len(found)} image files under {root} could be read "
                f"(first: {self.skipped[-1][1]})"
            )
        shapes = {tuple(x.shape) for x in images}
        if len(shapes) > 1:
            first = kept[0][0], tuple(images[0].shape)
            other = next(
                (p, tuple(x.shape))
                for (p, _), x in zip(kept, images, strict=True)
                if tuple(x.shape) != first[1]
            )
            raise ValueError(
                f"{who}: the images have different sizes ({first[0]}: {first[1]}, "
                f"{other[0]}: {other[1]}); pass image_size=... to resize them all"
            )
        warn_skipped(self.skipped, who, f"unreadable files or empty class folders under {root}")
        self.root = root
        self.images: Tensor = torch.stack(images)
        self.paths = [p for p, _ in kept]
        self.classes, self.labels = class_ids([c for _, c in kept])
        self.num_classes = len(self.classes)

    def __len__(self) -> int:
        return len(self.paths)

    def get_batch(self, indices: Sequence[int]) -> dict[str, Any]:
        """The collated batch of ``indices`` at once."""
        idx = torch.as_tensor(list(indices), dtype=torch.long)
        return {"image": self.images[idx], "label": self.labels[idx], "index": idx}

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"image": self.images[i], "label": int(self.labels[i]), "index": int(i)}
