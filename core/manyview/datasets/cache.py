"""Where built datasets are cached, and a checked cache entry (arrays + a JSON manifest).

An entry is two files in ``<root>/<dataset>/``: ``<key>.npz`` (the arrays) and ``<key>.json``
(the manifest: format version, build options and the SHA-256 of the ``.npz``). An entry is
used only when the manifest parses, its version and options match, and the file's hash is
the recorded one; otherwise it is stale or corrupt and is rebuilt. Writes go to a temporary
file first and are renamed into place, so an interrupted build never leaves a half entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["content_hash", "data_root", "entry_key", "read_entry", "write_entry"]


def data_root(root: str | os.PathLike[str] | None = None) -> Path:
    """``root`` if given, else ``$MANYVIEW_DATA``, else ``~/.cache/manyview``."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("MANYVIEW_DATA")
    if env:
        return Path(env).expanduser()
    return Path("~/.cache/manyview").expanduser()


def entry_key(options: Mapping[str, Any], version: int) -> str:
    """A short stable name for the entry built from ``options`` at ``version``."""
    text = json.dumps({"version": version, "options": dict(options)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def content_hash(arrays: Mapping[str, Any]) -> str:
    """SHA-256 over the arrays' names, dtypes, shapes and bytes: equal for equal data,
    whatever the file's own bytes (zip timestamps differ from build to build)."""
    import numpy as np

    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_entry(
    folder: Path, key: str, options: Mapping[str, Any], version: int
) -> tuple[dict[str, Any] | None, str]:
    """``(arrays, "")`` for a valid entry, or ``(None, why)`` when it is missing, stale or
    corrupt (``why`` is empty when there is simply no entry)."""
    import numpy as np

    data, manifest = folder / f"{key}.npz", folder / f"{key}.json"
    if not data.exists() and not manifest.exists():
        return None, ""
    try:
        meta = json.loads(manifest.read_text())
    except (OSError, ValueError) as exc:
        return None, f"its manifest {manifest} is unreadable ({exc})"
    if not isinstance(meta, dict):
        return None, f"its manifest {manifest} is not a JSON object"
    if meta.get("version") != version:
        return None, f"it was built by format version {meta.get('version')}, not {version}"
    if meta.get("options") != json.loads(json.dumps(dict(options))):
        return None, "it was built with other options"
    if not data.is_file():
        return None, f"its data file {data} is missing"
    digest = _sha256(data)
    if digest != meta.get("sha256"):
        return None, f"its data file {data} does not match its recorded content hash (corrupt)"
    try:
        with np.load(data, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, EOFError) as exc:  # pragma: no cover - the hash caught it
        return None, f"its data file {data} is unreadable ({exc})"
    return arrays, ""


def write_entry(
    folder: Path,
    key: str,
    arrays: Mapping[str, Any],
    options: Mapping[str, Any],
    version: int,
    info: Mapping[str, Any] | None = None,
) -> Path:
    """Write the arrays and their manifest atomically; return the ``.npz`` path."""
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    data, manifest = folder / f"{key}.npz", folder / f"{key}.json"
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{key}-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        digest = _sha256(Path(tmp))
        os.chmod(tmp, 0o644)
        os.replace(tmp, data)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    meta = {
        "version": version,
        "options": dict(options),
        "sha256": digest,
        "content_hash": content_hash(arrays),
        "bytes": data.stat().st_size,
        **dict(info or {}),
    }
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{key}-", suffix=".json")
    with os.fdopen(fd, "w") as fh:
        json.dump(meta, fh, indent=2, sort_keys=True)
    os.chmod(tmp, 0o644)
    os.replace(tmp, manifest)
    return data
