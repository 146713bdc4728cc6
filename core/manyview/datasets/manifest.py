"""A CSV or JSONL manifest: one column per modality (a file path or a string) plus a label.

Example ``pairs.csv``::

    image,audio,text,label
    img/001.png,wav/001.wav,a red bird,bird
    img/002.png,wav/002.wav,a small cat,cat

or ``pairs.jsonl`` with one object a line (``{"image": "img/001.png", "text": "...", ...}``).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from manyview.datasets.columns import ColumnDataset
from manyview.datasets.files import (
    DataFileError,
    SkippingDataset,
    audio_clip,
    check_image_mode,
    check_on_error,
    image_size_pair,
    label_ids,
    parse_label,
    read_text,
    skip_or_raise,
    warn_skipped,
)
from manyview.readers import get_reader

__all__ = ["KINDS", "Manifest"]

KINDS = ("image", "audio", "text")
"""What a column can hold: an image file, an audio file, or the text itself."""


def _kind_of(column: str) -> str | None:
    low = column.lower()
    return next((k for k in KINDS if low == k or low.startswith(k)), None)


def _rows(path: Path, who: str) -> tuple[list[str] | None, Iterator[tuple[int, Any]]]:
    """``(header, rows)``: for CSV the header and ``(line, list)`` rows; for JSONL ``None``
    and ``(line, object or error string)`` rows."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl", ".ndjson"):
        raise ValueError(f"{who}: {path} must end in .csv, .jsonl or .ndjson")
    text = read_text(path, who)  # UTF-8, a byte-order mark dropped
    if suffix == ".csv":
        reader = csv.reader(io.StringIO(text, newline=""))
        try:
            header = next(reader)
        except StopIteration:
            raise ValueError(f"{who}: {path} is empty (expected a header row)") from None
        except csv.Error as exc:
            raise ValueError(f"{who}: {path} line 1: not a CSV header ({exc})") from None

        def csv_rows() -> Iterator[tuple[int, Any]]:
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:  # a NUL byte, an unclosed quote at the end
                    yield reader.line_num, f"not a CSV row ({exc})"
                    continue
                if row and any(cell.strip() for cell in row):
                    yield reader.line_num, row

        return [h.strip() for h in header], csv_rows()

    def json_rows() -> Iterator[tuple[int, Any]]:
        for n, line in enumerate(io.StringIO(text), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as exc:
                yield n, f"not valid JSON ({exc})"
                continue
            yield n, obj if isinstance(obj, dict) else "not a JSON object"

    return None, json_rows()


class Manifest(ColumnDataset, SkippingDataset):
    """Samples listed in a CSV or JSONL file, one column (key) per modality.

    A column holds an image file, an audio file (paths relative to the manifest's folder, or
    absolute) or the text itself; ``modalities`` maps column names to ``"image"``,
    ``"audio"`` or ``"text"``, and by default every column whose name starts with one of
    these is used as that kind (``image``, ``image_left``, ``text_caption``...). The
    optional ``label`` column gives the class: when every label is a whole number, the
    sorted distinct numbers give the ids 0..K-1 and are kept as the class names
    (:attr:`classes`; labels ``3, 999999999`` make two classes, not a billion); otherwise
    the labels are class names (sorted names give the ids). A label that looks like a
    number but is not a whole number from 0 to 2**31 - 1 (``-1``, ``1.5``, ``1e12``), or a
    JSON value that is neither a string nor a number, is a bad row. Every file is read now, by the
    registered reader of its kind (:mod:`manyview.readers`): images as float32
    ``(C, H, W)`` in [0, 1] (the core's ``image`` reader, Pillow), audio mono at
    ``sample_rate``, cut or padded to ``clip_seconds`` (the ``audio`` reader of
    manyview-speech; without it an audio column raises
    :class:`~manyview.readers.ReaderNotFoundError` naming the package).

    Bad rows -- a ragged CSV row (too few or too many fields), a JSONL line that is not an
    object or lacks a column, an empty cell, a missing file, an unreadable file -- are
    reported with the manifest's line number: with ``on_error="skip"`` (the default) they
    are skipped and counted (:attr:`skipped` lists ``(line, reason)``, :attr:`num_skipped`
    counts them, one warning gives the count); with ``on_error="raise"`` the first one
    raises :class:`DataFileError`.

    Items: ``{"<column>": tensor or str, ..., "label": int, "index": int}`` (``label`` is
    ``-1`` without a label column).

    Args:
        path: the ``.csv``, ``.jsonl`` or ``.ndjson`` file.
        modalities: column -> kind; ``None`` infers them from the column names.
        label: the label column's name (absent from the file: no labels).
        image_size: resize images to this (int or ``(height, width)``); ``None`` keeps their
            size, which must then be the same for all.
        image_mode: Pillow mode: ``"RGB"``, ``"L"`` (grey) or ``"RGBA"``.
        sample_rate: audio rate in Hz.
        clip_seconds: audio clip length.
        on_error: ``"skip"`` or ``"raise"``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        modalities: Mapping[str, str] | None = None,
        label: str = "label",
        image_size: int | Sequence[int] | None = None,
        image_mode: str = "RGB",
        sample_rate: int = 16000,
        clip_seconds: float = 1.0,
        on_error: str = "skip",
    ) -> None:
        who = "manifest"
        check_on_error(on_error, who)
        size = image_size_pair(image_size, who)
        check_image_mode(image_mode, who)
        sample_rate, samples = audio_clip(sample_rate, clip_seconds, who)
        if not isinstance(label, str) or not label:
            raise ValueError(f"{who}: label must be a column name (a string), got {label!r}")
        if modalities is not None and not isinstance(modalities, Mapping):
            raise ValueError(
                f"{who}: modalities must map column names to 'image', 'audio' or 'text' "
                f"(e.g. {{'picture': 'image'}}), got {modalities!r}"
            )
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"{who}: {path} is not a file")
        header, rows = _rows(path, who)
        if modalities is not None:
            bad = {c: k for c, k in modalities.items() if k not in KINDS}
            if bad or not modalities:
                raise ValueError(f"{who}: modalities must map columns to {KINDS}, got {bad}")
            columns = dict(modalities)
        elif header is not None:
            columns = {}
            for name in header:
                if name == label:
                    continue
                kind = _kind_of(name)
                if kind is None:
                    raise ValueError(
                        f"{who}: {path}: cannot tell what column {name!r} holds; pass "
                        f"modalities={{'{name}': 'image' | 'audio' | 'text', ...}}"
                    )
                columns[name] = kind
        else:
            columns = {}  # JSONL without modalities: taken from the first good object
        if header is not None:
            missing = [c for c in columns if c not in header]
            if missing:
                raise ValueError(f"{who}: {path}: no column {missing[0]!r} (header: {header})")
            if len(set(header)) != len(header):
                raise ValueError(f"{who}: {path}: the header repeats a column name: {header}")
        has_label = header is not None and label in header
        options = {
            "image": {"mode": image_mode, "size": size},
            "audio": {
                "sample_rate": sample_rate,
                "samples": samples,
            },
        }
        readers: dict[str, Any] = {}

        def reader(kind: str) -> Any:
            if kind not in readers:
                readers[kind] = get_reader(kind, who=who, **options[kind])
            return readers[kind]

        for kind in sorted(set(columns.values()) - {"text"}):  # a missing one fails before any row
            reader(kind)
        base = path.parent

        self.skipped: list[tuple[int, str]] = []
        data: dict[str, list[Any]] = {}
        raw_labels: list[int | str] = []
        total = 0
        for line, row in rows:
            total += 1
            try:
                if isinstance(row, str):  # what is wrong with the line
                    raise DataFileError(row)
                if header is not None:
                    if len(row) != len(header):
                        raise DataFileError(
                            f"{len(row)} fields where the header has {len(header)} (ragged row)"
                        )
                    record = dict(zip(header, row, strict=True))
                else:
                    record = row
                    if not columns:
                        columns = {k: _kind_of(k) for k in record if k != label}
                        unknown = [k for k, v in columns.items() if v is None]
                        if unknown:
                            raise ValueError(
                                f"{who}: {path}: cannot tell what key {unknown[0]!r} holds; "
                                f"pass modalities={{'{unknown[0]}': 'image' | 'audio' | 'text'}}"
                            )
                        has_label = label in record
                    absent = [
                        c for c in [*columns, *([label] if has_label else [])] if c not in record
                    ]
                    if absent:
                        raise DataFileError(f"no {absent[0]!r} key (ragged row)")
                item: dict[str, Any] = {}
                for column, kind in columns.items():
                    value = record[column]
                    if not isinstance(value, str) or not value.strip():
                        raise DataFileError(f"column {column!r} is empty or not a string")
                    if kind == "text":
                        item[column] = value
                        continue
                    file = base / value.strip()
                    if not file.exists():
                        raise DataFileError(
                            f"{kind} file {value.strip()!r} not found (looked for {file})"
                        )
                    try:
                        item[column] = reader(kind)(file)
                    except (ValueError, FileNotFoundError) as exc:
                        raise DataFileError(str(exc)) from None
                if has_label:
                    value = record[label]
                    if value is None or (isinstance(value, str) and not value.strip()):
                        raise DataFileError(f"the {label!r} column is empty")
                    parsed = parse_label(value, label)
            except DataFileError as exc:
                skip_or_raise(self.skipped, line, f"{path} line {line}: {exc}", on_error, who)
                continue
            for column, value in item.items():
                data.setdefault(column, []).append(value)
            if has_label:
                raw_labels.append(parsed)
        if not data:
            first = f" (first: {self.skipped[0][1]})" if self.skipped else ""
            raise ValueError(f"{who}: {path} has no usable rows ({total} rows){first}")
        warn_skipped(self.skipped, who, f"of {total} rows of {path}")
        self.path = path
        self.columns = dict(columns)
        self.data: dict[str, Tensor | list[str]] = {}
        for column, values in data.items():
            if columns[column] == "text":
                self.data[column] = values
                continue
            shapes = {tuple(v.shape) for v in values}
            if len(shapes) > 1:
                raise ValueError(
                    f"{who}: {path}: the {column!r} images have different sizes "
                    f"{sorted(shapes)[:3]}; pass image_size=... to resize them all"
                )
            self.data[column] = torch.stack(values)
        n = len(next(iter(data.values())))
        if has_label:
            self.classes, self.labels = label_ids(raw_labels)
        else:
            self.classes = []
            self.labels = torch.full((n,), -1, dtype=torch.long)
        self.num_classes = len(self.classes)
        self.modalities = tuple(self.columns)
