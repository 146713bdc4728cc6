"""Shared pieces of the datasets that read a user's files (``manifest``, ``imagefolder``,
manyview-speech's ``audiofolder``): finding the files of class folders, passing over the
files or rows that cannot be used, and class ids from class names.

The files themselves are decoded by the registered readers (:mod:`manyview.readers`). A file
or row that cannot be used raises :class:`DataFileError` naming it and the reason, or with
``on_error="skip"`` is recorded in the dataset's ``skipped`` (:class:`SkippingDataset`,
:func:`skip_or_raise`) and counted in one warning (:func:`warn_skipped`).

Python::

    from manyview.datasets.files import SkippingDataset, class_files, class_ids, skip_or_raise

    class SoundFolder(SkippingDataset):
        def __init__(self, root, on_error="skip"):
            check_on_error(on_error, "soundfolder")
            found, empty = class_files(root, (".wav",))  # [(path, class)], empty folders
            self.skipped = []
            for path, _ in found:
                ...  # on a bad file: skip_or_raise(self.skipped, path, reason, on_error, "soundfolder")
            warn_skipped(self.skipped, "soundfolder", f"of {len(found)} files under {root}")
            self.classes, self.labels = class_ids([c for _, c in found])
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

__all__ = [
    "IMAGE_EXTENSIONS",
    "MAX_LABEL",
    "DataFileError",
    "SkippingDataset",
    "audio_clip",
    "check_extensions",
    "check_image_mode",
    "check_on_error",
    "class_files",
    "class_ids",
    "image_size_pair",
    "label_ids",
    "parse_label",
    "read_text",
    "skip_or_raise",
    "warn_skipped",
]

IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm",
)  # fmt: skip
"""File endings the ``imagefolder`` dataset picks up."""


MAX_LABEL = 2**31 - 1
"""The largest whole-number label a data file may hold."""

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


class DataFileError(ValueError):
    """A data file or manifest row could not be used; the message says where and why."""


def check_on_error(on_error: str, who: str) -> None:
    if on_error not in ("skip", "raise"):
        raise ValueError(f"{who}: on_error must be 'skip' or 'raise', got {on_error!r}")


def check_image_mode(mode: Any, who: str, name: str = "image_mode") -> str:
    """``mode`` if it is one of the image reader's Pillow modes (``"RGB"``, ``"L"``,
    ``"RGBA"``, ``"LA"``), checked before any file is read; else the one-line ValueError
    ``"{who}: unknown image_mode 'rgb'; did you mean 'RGB'? (choose from ...)"``."""
    from manyview.options import check_choice
    from manyview.readers.image import MODES

    if isinstance(mode, str) and mode not in MODES and mode.upper() in MODES:
        raise ValueError(
            f"{who}: unknown {name} {mode!r}; did you mean {mode.upper()!r}? "
            f"(choose from {', '.join(map(repr, MODES))})"
        )
    return check_choice(mode, MODES, name, who)


def check_extensions(extensions: Any, who: str) -> tuple[str, ...]:
    """The file endings ``extensions`` (a list of strings that start with ``.``), lower-cased;
    a bare string or anything else is a one-line ValueError naming the fix."""
    if isinstance(extensions, str) or not isinstance(extensions, Sequence) or not extensions:
        raise ValueError(
            f"{who}: extensions must be a non-empty list of file endings such as "
            f"['.png', '.jpg'], got {extensions!r}"
        )
    bad = [e for e in extensions if not isinstance(e, str) or not e.startswith(".") or len(e) < 2]
    if bad:
        raise ValueError(
            f"{who}: extensions must be file endings that start with '.', such as '.png'; "
            f"got {bad[0]!r}"
        )
    return tuple(e.lower() for e in extensions)


MAX_SAMPLE_RATE = 768_000
"""The highest audio sample rate (Hz) a dataset accepts."""

MAX_CLIP_SECONDS = 3600.0
"""The longest audio clip (seconds) a dataset cuts its files to."""


def audio_clip(sample_rate: Any, clip_seconds: Any, who: str) -> tuple[int, int]:
    """``(sample_rate, samples per clip)`` after checking both options: ``sample_rate`` a
    whole number of Hz from 1 to :data:`MAX_SAMPLE_RATE`, ``clip_seconds`` a positive
    finite number of at most :data:`MAX_CLIP_SECONDS` (every clip is held in memory); else a
    one-line ValueError naming the option."""
    from manyview.options import check_int, check_positive

    rate = check_int(sample_rate, "sample_rate", who)
    if rate > MAX_SAMPLE_RATE:
        raise ValueError(
            f"{who}: sample_rate must be at most {MAX_SAMPLE_RATE} Hz, got {rate} "
            "(16000 is usual for speech, 44100 or 48000 for music)"
        )
    seconds = check_positive(clip_seconds, "clip_seconds", who)
    if seconds > MAX_CLIP_SECONDS:
        raise ValueError(
            f"{who}: clip_seconds must be at most {MAX_CLIP_SECONDS:g} (every clip is held in "
            f"memory), got {seconds:g}; cut long recordings into shorter files"
        )
    return rate, max(1, round(seconds * rate))


def read_text(path: Path, who: str) -> str:
    """The text of a data file (a manifest), decoded as UTF-8 with or without a byte-order
    mark (what spreadsheets save as "CSV UTF-8").

    Raises:
        ValueError: one line naming the file, and for bytes that are not UTF-8 the line and
            column of the first one and the fix (save the file as UTF-8).
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"{who}: cannot read {path}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ValueError(
            f"{who}: {path} line {line}, column {column}: byte 0x{data[exc.start]:02x} is not "
            "UTF-8 text; save the file with the UTF-8 encoding (a spreadsheet's 'CSV UTF-8')"
        ) from None


def image_size_pair(
    size: int | Sequence[int] | None, who: str, name: str = "image_size"
) -> tuple[int, int] | None:
    """``None``, or ``(height, width)`` from a positive int (both sides) or a pair of them;
    else a ValueError ``"{who}: {name} must be a positive int or (height, width), got ..."``."""
    if size is None:
        return None
    pair = (size, size) if isinstance(size, int) else size
    if (
        not isinstance(pair, Sequence)
        or isinstance(pair, str)
        or len(pair) != 2
        or any(not isinstance(s, int) or isinstance(s, bool) or s < 1 for s in pair)
    ):
        raise ValueError(f"{who}: {name} must be a positive int or (height, width), got {size!r}")
    return int(pair[0]), int(pair[1])


class SkippingDataset(Dataset):
    """Base of the datasets that pass over the files or rows they cannot use
    (``on_error="skip"``): :attr:`skipped` lists ``(where, reason)`` (a path, or a row's
    line), :attr:`num_skipped` counts them. A subclass sets ``skipped`` in its constructor."""

    skipped: list[tuple[Any, str]]

    @property
    def num_skipped(self) -> int:
        """How many files or rows were passed over."""
        return len(self.skipped)


def skip_or_raise(
    skipped: list[tuple[Any, str]],
    where: Any,
    reason: str,
    on_error: str,
    who: str | None,
    error: type[Exception] = DataFileError,
) -> None:
    """With ``on_error="skip"``, record ``(where, reason)`` in ``skipped``; with
    ``"raise"``, raise ``error("{who}: {reason}")`` (just ``reason`` when ``who`` is
    ``None``: a reason that already names the file)."""
    if on_error == "raise":
        raise error(f"{who}: {reason}" if who else reason) from None
    skipped.append((where, reason))


def warn_skipped(
    skipped: Sequence[tuple[Any, str]], who: str, what: str, *, stacklevel: int = 3
) -> None:
    """One warning for everything passed over, when anything was:
    ``"{who}: skipped {len(skipped)} {what} (first: {reason}); see dataset.skipped"``
    (``what``: e.g. ``f"of {total} rows of {path}"``). The default ``stacklevel`` points at
    the code that built the dataset when a dataset's constructor calls this."""
    if skipped:
        warnings.warn(
            f"{who}: skipped {len(skipped)} {what} (first: {skipped[0][1]}); see dataset.skipped",
            stacklevel=stacklevel,
        )


def class_files(
    root: str | Path, extensions: Sequence[str], *, loose_class: str | None = None
) -> tuple[list[tuple[Path, str]], list[Path]]:
    """The files of ``root``'s class folders, labelled by folder.

    Every subfolder of ``root`` whose name does not start with ``.`` is a class; its files
    with one of ``extensions`` (any case), at any depth, are that class's. Files directly in
    ``root`` are the class ``loose_class``, or ignored when it is ``None``.

    Returns:
        ``([(path, class), ...] sorted by path, [class folders that hold no such file]``).
    """
    root = Path(root)
    exts = tuple(e.lower() for e in extensions)
    found: list[tuple[Path, str]] = []
    empty: list[Path] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = [p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in exts]
        if not files:
            empty.append(folder)
        found += [(p, folder.name) for p in files]
    if loose_class is not None:
        found += [
            (p, loose_class) for p in root.iterdir() if p.is_file() and p.suffix.lower() in exts
        ]
    return sorted(found), empty


def class_ids(names: Sequence[str]) -> tuple[list[str], Tensor]:
    """The sorted distinct class ``names`` and each name's id in them: ``(classes, labels)``,
    ``labels`` a long tensor ``(len(names),)``."""
    classes = sorted(set(names))
    index = {c: k for k, c in enumerate(classes)}
    return classes, torch.tensor([index[c] for c in names], dtype=torch.long)


def parse_label(value: Any, column: str = "label") -> int | str:
    """One label as a data file holds it: a whole number (``7``, ``"7"``, ``"7.0"``) as an
    ``int``, anything else that is not empty as a class name (a stripped ``str``).

    Raises:
        DataFileError: an empty value, a value that is neither a number nor a string (a
            bool, a list, ``null``), or a number that is not a whole number from 0 to
            :data:`MAX_LABEL` (negative, fractional, huge, NaN); the message names the
            column and the value and says what a label may be.
    """
    allowed = f"labels are class names or whole numbers from 0 to {MAX_LABEL}"
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise DataFileError(f"the {column!r} column is empty")
        if not _NUMBER.fullmatch(text):
            return text
        number = Decimal(text)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = Decimal(value)
    else:
        raise DataFileError(
            f"the {column!r} value {value!r} is not a class name or a whole number; {allowed}"
        )
    if not number.is_finite() or number < 0 or number > MAX_LABEL:
        what = "negative" if number.is_finite() and number < 0 else "out of range"
        raise DataFileError(f"the {column!r} value {value!r} is {what}; {allowed}")
    if number != number.to_integral_value():
        raise DataFileError(f"the {column!r} value {value!r} is not a whole number; {allowed}")
    return int(number)


def label_ids(values: Sequence[int | str]) -> tuple[list[str], Tensor]:
    """``(classes, labels)`` from :func:`parse_label`'s values: when all are whole numbers,
    their sorted distinct values (as strings) are the classes and each label is its value's
    rank (``[3, 999999999, 3]`` gives ``["3", "999999999"]`` and ``[0, 1, 0]``: no class
    is made for the numbers between); otherwise every value is a class name
    (:func:`class_ids`)."""
    if all(isinstance(v, int) for v in values):
        distinct = sorted(set(values))
        index = {v: k for k, v in enumerate(distinct)}
        return [str(v) for v in distinct], torch.tensor(
            [index[v] for v in values], dtype=torch.long
        )
    return class_ids([str(v) for v in values])
