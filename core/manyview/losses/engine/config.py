"""How a loss runs its log-partition functions: :class:`EngineConfig`, and the checks of the
engine's settings (each a one-line ``ValueError`` that names the setting and the choices;
:func:`manyview.options.check_choice` for the named choices)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from manyview.losses.engine.backend import BACKENDS, TritonBackend
from manyview.options import check_choice

ENGINES = ("auto", "dense", "tiled")
Tile = int | tuple[int, int]
"""Rows and columns per tile: one int for both, or ``(rows, cols)``."""
DEFAULT_TILE = (1024, 4096)
"""Rows and columns per tile of the PyTorch path; docs/benchmarks.md ("Tiled engine
defaults") has the timings behind it."""
DEFAULT_MIN_ENTRIES = 2048 * 2048
"""``mode="auto"`` tiles a loss whose dense logits would hold more entries than this;
docs/benchmarks.md ("Tiled engine defaults") has the timings behind it."""


def parse_tile(tile: Any, who: str) -> tuple[int, int]:
    """``(rows, cols)`` per tile from a positive int (both), a pair of them, or ``None``
    (:data:`DEFAULT_TILE`)."""
    if tile is None:
        return DEFAULT_TILE
    if isinstance(tile, int) and not isinstance(tile, bool):
        tile = (tile, tile)
    if isinstance(tile, list):  # a TOML array
        tile = tuple(tile)
    if (
        not isinstance(tile, tuple)
        or len(tile) != 2
        or not all(isinstance(t, int) and not isinstance(t, bool) and t > 0 for t in tile)
    ):
        raise ValueError(f"{who}: tile must be a positive int or (rows, cols), got {tile!r}")
    return tile


@dataclass(frozen=True)
class EngineConfig:
    """How a loss of the InfoNCE family computes its log-partition functions.

    Every loss with an ``engine`` option takes one, or ``"auto"``, ``"dense"`` or
    ``"tiled"`` (``EngineConfig(mode=...)``), or a table of these fields (a TOML config's
    ``engine = {mode = "tiled", tile = [512, 2048]}``); :meth:`parse` turns any of them into
    an EngineConfig, which the loss keeps as its ``engine`` attribute.

    Attributes:
        mode: ``"dense"`` builds the logits matrix; ``"tiled"`` never does (the same value
            and gradient in O((R + C)·D + tile_r·tile_c) memory); ``"auto"`` (default) tiles
            when the dense logits would hold more than ``min_entries`` entries.
        backend: what runs the tiled form: ``"auto"`` (default: the fused Triton kernels on
            CUDA where they are available and pass their self-check, else the PyTorch
            tiles), ``"torch"`` or ``"triton"`` (the kernels unchecked; an error where they
            cannot run).
        tile: rows and columns per PyTorch tile, ``(rows, cols)`` or one int for both
            (default :data:`DEFAULT_TILE`); the Triton kernels choose their own blocks.
        min_entries: ``"auto"``'s threshold (default :data:`DEFAULT_MIN_ENTRIES`).
        triton: the :class:`~manyview.losses.engine.backend.TritonBackend` whose kernels,
            self-checks and failure record to use; ``None`` (default): the one this process
            shares.

    Raises:
        ValueError: naming the field, on an unknown mode or backend, a tile that is not
            positive ints, a negative ``min_entries`` or a ``triton`` of another type.
    """

    mode: str = "auto"
    backend: str = "auto"
    tile: tuple[int, int] = DEFAULT_TILE
    min_entries: int = DEFAULT_MIN_ENTRIES
    triton: TritonBackend | None = None

    def __post_init__(self) -> None:
        check_choice(self.mode, ENGINES, "mode", "EngineConfig")
        check_choice(self.backend, BACKENDS, "backend", "EngineConfig")
        object.__setattr__(self, "tile", parse_tile(self.tile, "EngineConfig"))
        entries = self.min_entries
        if isinstance(entries, bool) or not isinstance(entries, int) or entries < 0:
            raise ValueError(
                f"EngineConfig: min_entries must be a non-negative int, got {entries!r}"
            )
        if self.triton is not None and not isinstance(self.triton, TritonBackend):
            raise ValueError(
                "EngineConfig: triton must be a TritonBackend or None, got "
                f"{type(self.triton).__name__}"
            )

    @classmethod
    def parse(cls, value: Any, who: str = "loss") -> EngineConfig:
        """``value`` as an EngineConfig: one as it is, a mode name, or a mapping of fields;
        ``who`` (the loss's name) starts the error message."""
        if isinstance(value, EngineConfig):
            return value
        if isinstance(value, str):
            return cls(check_choice(value, ENGINES, "engine", who))
        if isinstance(value, Mapping):
            names = tuple(f.name for f in fields(cls))
            for key in value:
                check_choice(key, names, "engine field", who)
            try:
                return cls(**value)
            except ValueError as exc:
                raise ValueError(f"{who}: {exc}") from None
        raise ValueError(
            f"{who}: engine must be 'auto', 'dense', 'tiled', a table of EngineConfig fields "
            f"or an EngineConfig, got {type(value).__name__}"
        )

    def use_tiled(self, entries: int, *, factor: float = 1.0) -> bool:
        """Whether a loss tiles a dense logits matrix of ``entries`` entries: always for
        ``"tiled"``, never for ``"dense"``, and for ``"auto"`` above ``factor`` x
        ``min_entries`` (a loss whose tiled form wins earlier, as CLIP's one-walk form does,
        passes a factor below 1)."""
        if self.mode == "tiled":
            return True
        if self.mode == "dense":
            return False
        return entries > self.min_entries * factor

    def lse_options(self) -> dict[str, Any]:
        """The keywords of :func:`~manyview.losses.engine.lse.tiled_logsumexp` (and
        ``tiled_logsumexp_rows_cols``) this config sets: ``tile``, ``backend``, ``triton``."""
        return {"tile": self.tile, "backend": self.backend, "triton": self.triton}


EngineOption = str | EngineConfig | Mapping[str, Any]
"""What a loss's ``engine`` option takes: a mode name, a table of :class:`EngineConfig`'s
fields, or an EngineConfig (:meth:`EngineConfig.parse`)."""
