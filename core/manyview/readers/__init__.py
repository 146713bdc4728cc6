"""Readers: decode one modality's files (the registry kind ``reader``).

A reader is registered under the modality it decodes (``"image"``, ``"audio"``, ...) with
``modality=`` and ``suffixes=`` (the file endings it reads). Its factory is called with
options and returns a callable ``path -> data``::

    read = manyview.create("reader", "audio", sample_rate=16000, samples=16000)
    wave = read("clips/001.wav")  # float32 (16000,)

The callable raises ``FileNotFoundError`` for a missing file and ``ValueError`` (for
example :class:`manyview.datasets.files.DataFileError`) naming the file and the reason for
one that cannot be used. Datasets that read user files (``manifest``) go through
:func:`get_reader`, so a modality whose plugin is not installed gives one line naming the
package to install. The core registers ``image`` (Pillow, :mod:`manyview.readers.image`);
manyview-speech registers ``audio``.

This module imports neither torch nor any reader: ``manyview list reader`` stays light.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["READER_PLUGINS", "ReaderNotFoundError", "get_reader"]

READER_PLUGINS: dict[str, str] = {"image": "manyview", "audio": "manyview-speech"}
"""The distribution that registers the reader of each modality manyview knows of."""


class ReaderNotFoundError(LookupError):
    """No installed plugin registers a reader for a modality; the message names the package."""


def get_reader(modality: str, /, *, who: str = "reader", **options: Any) -> Callable[..., Any]:
    """The registered reader of ``modality`` built with ``options``: a callable
    ``path -> data``.

    Args:
        modality: the registered reader's name, e.g. ``"image"`` or ``"audio"``.
        who: what needs it, for the error message (e.g. ``"manifest"``).
        **options: the reader's options (``sample_rate=...``, ``mode=...``).

    Raises:
        ReaderNotFoundError: no plugin registers that reader; the message names the
            distribution to install.
    """
    import manyview
    from manyview.registry import UnknownNameError

    try:
        return manyview.create("reader", modality, **options)
    except UnknownNameError:
        package = READER_PLUGINS.get(modality)
        fix = (
            f"install {package} (pip install {package})"
            if package
            else "install a plugin that registers one (`manyview list reader` shows the installed readers)"
        )
        raise ReaderNotFoundError(
            f"{who}: no installed plugin registers a reader for {modality} files; {fix}"
        ) from None
