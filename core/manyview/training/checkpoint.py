"""Atomic, pickle-free checkpoints.

A checkpoint is a directory ``step-K/`` holding ``model.safetensors`` (the model's weights)
and ``state.pt`` (everything else: optimizer, scheduler, RNG states, data position, teacher,
stateful losses, counters) saved with ``torch.save`` but made only of tensors, numbers,
strings, lists and dicts, so it loads with ``torch.load(weights_only=True)``: no code runs
when a checkpoint is read. It is written into a temporary directory, every file and the
directory are fsynced, then renamed into place; ``last`` is a symbolic link replaced
atomically. A run killed at any moment leaves either the old or the new checkpoint, never
half of one.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from manyview.training.errors import CheckpointError

MODEL_FILE = "model.safetensors"
STATE_FILE = "state.pt"
STEP_DIR = re.compile(r"^step-(\d+)$")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(
    root: str | Path,
    step: int,
    model_state: Mapping[str, Tensor],
    state: Mapping[str, Any],
    *,
    keep: int = 3,
) -> Path:
    """Write ``root/step-{step}`` atomically, point ``root/last`` at it, keep the newest
    ``keep`` step directories, and return the new directory."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step}"
    tmp = Path(tempfile.mkdtemp(prefix=f".step-{step}-", dir=root))
    try:
        tmp.chmod(0o755)
        tensors = {k: v.detach().contiguous().cpu() for k, v in model_state.items()}
        save_file(_unshare(tensors), str(tmp / MODEL_FILE))
        torch.save(dict(state), tmp / STATE_FILE)
        for name in (MODEL_FILE, STATE_FILE):
            _fsync(tmp / name)
        _fsync(tmp)
        if final.exists():  # a re-run of the same step (after a resume): replace it
            shutil.rmtree(final)
        os.replace(tmp, final)
        _fsync(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    link_tmp = root / f".last-{os.getpid()}"
    if link_tmp.is_symlink() or link_tmp.exists():
        link_tmp.unlink()
    os.symlink(final.name, link_tmp)
    os.replace(link_tmp, root / "last")
    _fsync(root)
    for old in list_checkpoints(root)[:-keep]:
        _remove(old)
    clean_partial(root)
    return final


def _remove(step_dir: Path) -> None:
    """Remove a step directory: renamed away first (atomic), so that a kill in the middle
    never leaves a half-removed ``step-K/`` (a ``.trash-*`` folder that
    :func:`clean_partial` removes)."""
    trash = step_dir.with_name(f".trash-{step_dir.name}-{os.getpid()}")
    try:
        os.replace(step_dir, trash)
    except OSError:
        trash = step_dir
    shutil.rmtree(trash, ignore_errors=True)


def _unshare(tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    """safetensors refuses tensors that share memory (tied weights): store copies."""
    seen: dict[int, str] = {}
    out = {}
    for name, t in tensors.items():
        ptr = t.untyped_storage().data_ptr() if t.numel() else -1
        out[name] = t.clone() if ptr in seen and ptr != -1 else t
        seen.setdefault(ptr, name)
    return out


def list_checkpoints(root: str | Path) -> list[Path]:
    """Complete checkpoint directories under ``root``, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        match = STEP_DIR.match(child.name)
        if (
            match
            and child.is_dir()
            and (child / MODEL_FILE).is_file()
            and (child / STATE_FILE).is_file()
        ):
            found.append((int(match.group(1)), child))
    return [path for _, path in sorted(found)]


def clean_partial(root: str | Path) -> list[Path]:
    """Remove what a run killed at the wrong moment leaves: temporary directories of a
    checkpoint being written or removed, and ``step-K/`` directories that lack one of their
    files (cut while being pruned). Returns what was removed."""
    root = Path(root)
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    complete = set(list_checkpoints(root))
    for child in root.iterdir():
        partial = child.name.startswith((".step-", ".last-", ".trash-"))
        broken = STEP_DIR.match(child.name) and child.is_dir() and child not in complete
        if not (partial or broken):
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
        removed.append(child)
    return removed


def latest_checkpoint(root: str | Path) -> Path | None:
    """The newest complete checkpoint (``last`` if it resolves, else the highest step)."""
    root = Path(root)
    last = root / "last"
    if last.is_symlink() and (last / MODEL_FILE).is_file() and (last / STATE_FILE).is_file():
        return last.resolve()
    found = list_checkpoints(root)
    return found[-1] if found else None


def candidates(root: str | Path) -> list[Path]:
    """Complete checkpoints to resume from, best first: ``last``'s target, then the others
    newest first (a resume falls back along this list when one cannot be read)."""
    found = list(reversed(list_checkpoints(root)))
    newest = latest_checkpoint(root)
    if newest is not None and newest in found:
        found.remove(newest)
    return ([newest] if newest is not None else []) + found


def load_checkpoint(
    path: str | Path, *, required: tuple[str, ...] = ()
) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """(model weights, state) of one checkpoint directory; loading runs no pickled code.

    Raises:
        CheckpointError: a file is missing or cannot be read, or ``state.pt`` is not a dict
            holding every key in ``required``.
    """
    path = Path(path)
    try:
        model = load_file(str(path / MODEL_FILE))
        state = torch.load(path / STATE_FILE, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise CheckpointError(
            f"{path} is not a complete checkpoint: {exc.filename} is missing"
        ) from None
    except Exception as exc:
        first = " ".join(str(exc).split())[:200]
        raise CheckpointError(
            f"cannot read checkpoint {path}: {type(exc).__name__}: {first}"
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path / STATE_FILE} is not a dict (got {type(state).__name__})")
    missing = [key for key in required if key not in state]
    if missing:
        raise CheckpointError(
            f"{path / STATE_FILE} lacks {', '.join(map(repr, missing))}: it was not written by "
            "this version of manyview's trainer, or it is damaged"
        )
    return model, state


def rng_state(generator: torch.Generator) -> dict[str, Any]:
    """The random states a bit-identical resume needs (torch CPU, CUDA, and ours)."""
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "views": generator.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any], generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    generator.set_state(state["views"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
