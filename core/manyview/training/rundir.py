"""Checks of a run directory (``--out``) made before anything is built or trained.

A run directory holds one run: ``config.toml``, ``metrics.jsonl``, ``checkpoints/`` and
optionally ``tensorboard/`` (``docs/training.md``). :func:`check_run_dir` turns every
problem that can be seen before the first step — a file where a folder should be, a folder
that cannot be written, a run already there — into one :class:`RunDirError` naming the
path and the fix. Imports no torch.
"""

from __future__ import annotations

import os
from pathlib import Path

from manyview.training.errors import RunDirError

__all__ = ["RUN_FILES", "check_run_dir", "holds_a_run"]

# what a run writes, and the kind of each: "file", "dir" or "link"
RUN_FILES = {
    "config.toml": "file",
    "metrics.jsonl": "file",
    "checkpoints": "dir",
    "tensorboard": "dir",
}


def holds_a_run(out: str | Path) -> list[str]:
    """The names of the run files already in ``out`` (empty: no run is there)."""
    out = Path(out)
    return [name for name in RUN_FILES if (out / name).exists() or (out / name).is_symlink()]


def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK | os.X_OK)


def check_run_dir(out: str | Path, *, resume: bool) -> None:
    """Raise :class:`RunDirError` unless a run can be written to (or resumed in) ``out``.

    A new run refuses a directory that already holds a run's files (even one that died
    before its first checkpoint): two runs never share a ``metrics.jsonl``.
    """
    out = Path(out)
    hint = "give another --out"
    if out.exists() and not out.is_dir():
        raise RunDirError(f"--out {out} is a file, not a folder; {hint}")
    ancestor = out
    while not ancestor.exists():
        if ancestor.parent == ancestor:
            break
        ancestor = ancestor.parent
    if ancestor.exists() and not ancestor.is_dir():
        raise RunDirError(f"--out {out}: {ancestor} is a file, not a folder; {hint}")
    if not _writable(ancestor):
        raise RunDirError(f"--out {out}: {ancestor} is not writable; {hint}")
    for name, kind in RUN_FILES.items():
        path = out / name
        if not (path.exists() or path.is_symlink()):
            continue
        wrong = (kind == "file" and not path.is_file()) or (kind == "dir" and not path.is_dir())
        if wrong:
            what = "a folder" if kind == "dir" else "a file"
            raise RunDirError(f"{path} should be {what}; move it away or {hint}")
        if kind == "file" and not os.access(path, os.W_OK):
            raise RunDirError(f"{path} is not writable; {hint}")
        if kind == "dir" and not _writable(path):
            raise RunDirError(f"{path} is not writable; {hint}")
    last = out / "checkpoints" / "last"
    if (last.exists() or last.is_symlink()) and not last.is_symlink():
        raise RunDirError(
            f"{last} should be a link to the newest step-K/ folder; remove it (the next "
            "checkpoint writes it again)"
        )
    if not resume:
        found = holds_a_run(out)
        if found:
            raise RunDirError(
                f"{out} already holds a run ({', '.join(found)}); continue it with "
                f"`manyview train --resume {out}`, or {hint}"
            )
