"""The trainer's error classes and the one-line message the command line prints.

Importable without torch, so that ``manyview train`` can report any error (a Ctrl-C while
torch is still importing, a configuration file that is not UTF-8) in one line.
"""

from __future__ import annotations

from manyview.config import ConfigError

__all__ = ["CheckpointError", "RunDirError", "Stopped", "TrainingError", "one_line"]


class TrainingError(RuntimeError):
    """Training stopped; the message says why and where the last checkpoint is."""


class CheckpointError(RuntimeError):
    """A checkpoint is missing, incomplete or does not fit the run."""


class RunDirError(ConfigError):
    """The run directory (``--out``) cannot be used; the message names the path and the fix
    (a usage error, like a bad configuration: nothing was trained)."""


def one_line(exc: BaseException) -> str:
    """``exc``'s message on one line: its lines joined, whitespace collapsed; the class
    name when the message is empty, prefixed for exceptions that are not manyview's own."""
    text = " ".join(str(exc).split())
    if isinstance(exc, TrainingError | CheckpointError | ValueError) and text:
        return text
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


class Stopped(KeyboardInterrupt):
    """A run stopped by SIGINT or SIGTERM after saving a checkpoint; the message (already
    shown to the user) says where it is and how to continue."""
