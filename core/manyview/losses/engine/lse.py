r"""The tiled row log-sum-exps the losses are built from, never the (R x C) matrix:
:func:`tiled_logsumexp` (with exclusions by ids and per-row scales),
:func:`tiled_logsumexp_rows_cols` (CLIP's two directions in one walk) and
:func:`tiled_softmax_moment` (iSogCLR's temperature gradient). docs/losses.md ("Tiled
engine") gives each loss's decomposition into such row statistics.
"""

from __future__ import annotations

import torch
from torch import Tensor

from manyview.losses.engine.autograd import TiledLSE, TiledLSERowsCols
from manyview.losses.engine.backend import BACKENDS, TritonBackend, default_triton_backend
from manyview.losses.engine.config import Tile, parse_tile
from manyview.losses.engine.inputs import Scale, check_operands, check_pair, lse_problem
from manyview.losses.engine.tiles import TorchTiles
from manyview.options import check_choice


def tiled_logsumexp(
    a: Tensor,
    b: Tensor,
    scale: Scale,
    *,
    row_ids: Tensor | None = None,
    col_ids: Tensor | None = None,
    tile: Tile | None = None,
    backend: str = "auto",
    triton: TritonBackend | None = None,
) -> Tensor:
    r"""Row-wise log-sum-exp of scaled inner products, without the (R x C) matrix.

    .. math:: \mathrm{lse}_i = \log\sum_{j:\ \mathrm{row\_ids}_i \ne \mathrm{col\_ids}_j}
              \exp(\mathrm{scale}_i\,\langle a_i, b_j\rangle)

    Value and gradient equal the dense ``(scale * a @ b.T).masked_fill(...).logsumexp(1)``
    up to rounding; memory is O((R + C)·D + tile_r·tile_c) in both passes (the backward
    recomputes each tile, as Inf-CL does, arXiv 2410.17243).

    Args:
        a: (R, D) anchor rows, float32 or float64 (bf16/half are computed in float32).
        b: (C, D) candidate rows, the same dtype and device as ``a``.
        scale: a number, a 0-dim tensor or an (R,) tensor (per-row 1/τ_i); a tensor may
            require grad (a learnable logit scale).
        row_ids, col_ids: (R,) and (C,) integer ids, given together or not at all; entry
            (i, j) is excluded when ``row_ids[i] == col_ids[j]`` (self-exclusion: the
            anchors' global column indices and ``arange(C)``; same-instance exclusion:
            instance ids). A row with every entry excluded gives ``-inf`` and no gradient.
        tile: rows and columns per PyTorch tile, an int for both or ``(rows, cols)``;
            default :data:`~manyview.losses.engine.config.DEFAULT_TILE`. Ignored by the
            Triton kernels.
        backend: ``"auto"`` (the Triton kernels where they run, take the dtype and pass
            their self-check, else the PyTorch tiles), ``"torch"`` or ``"triton"``.
        triton: the :class:`~manyview.losses.engine.backend.TritonBackend` to use (its
            kernels, checks and failures); default: the process's shared one.

    Returns:
        (R,) tensor, float32 for half-precision inputs, else ``a``'s dtype. Runs with
        autocast disabled.

    Raises:
        ValueError: on mismatched shapes, dtypes or devices, ids of the wrong length or
            given alone, a bad ``scale``/``tile``/``backend``, or ``"triton"`` unavailable.
    """
    who = "tiled_logsumexp"
    check_choice(backend, BACKENDS, "backend", who)
    row_ids, col_ids = check_operands(a, b, row_ids, col_ids, who)
    tiles = parse_tile(tile, who)
    triton = triton if triton is not None else default_triton_backend()
    ops = triton.ops(a, backend, row_ids is not None, tiles)
    with torch.autocast(a.device.type, enabled=False):
        p = lse_problem(a, b, scale, row_ids, col_ids, who)
        if p.a.shape[0] == 0:
            return p.a.sum(dim=1) * 0.0  # shape (0,)
        return TiledLSE.apply(ops, p.a, p.b, p.scale_vec, p.row_ids, p.col_ids)


def tiled_logsumexp_rows_cols(
    a: Tensor,
    b: Tensor,
    scale: float | Tensor,
    *,
    tile: Tile | None = None,
    backend: str = "auto",
    triton: TritonBackend | None = None,
) -> tuple[Tensor, Tensor]:
    r"""The row and the column log-sum-exps of ``scale * a @ b.T`` (CLIP's two directions)
    without the (R x C) matrix, in one walk over the tiles forward and one backward:

    .. math:: \mathrm{row}_i = \log\sum_j e^{x_{ij}},\quad
              \mathrm{col}_j = \log\sum_i e^{x_{ij}},\quad x = \mathrm{scale}\,a b^\top

    Three tile products in all (one forward, two backward) instead of the eight of two
    :func:`tiled_logsumexp` calls. ``a`` (R, D), ``b`` (C, D), at least one row each;
    ``scale``: a number or a 0-dim tensor (may require grad); ``tile``, ``backend`` and
    ``triton`` as for :func:`tiled_logsumexp`. Where the Triton kernels run
    (``backend="auto"``), it is two :func:`tiled_logsumexp` calls (the kernels are
    one-sided). Returns ``((R,), (C,))``.
    """
    who = "tiled_logsumexp_rows_cols"
    check_choice(backend, BACKENDS, "backend", who)
    if isinstance(scale, Tensor) and scale.dim() != 0:
        raise ValueError(
            f"{who}: scale must be a number or a 0-dim tensor, got shape {tuple(scale.shape)}"
        )
    check_pair(a, b, who)
    triton = triton if triton is not None else default_triton_backend()
    if backend != "torch" and (
        backend == "triton" or (a.dtype != torch.float64 and triton.kernels_for(a) is not None)
    ):
        options = {"tile": tile, "backend": backend, "triton": triton}
        rows = tiled_logsumexp(a, b, scale, **options)
        return rows, tiled_logsumexp(b, a, scale, **options)
    tiles = TorchTiles(parse_tile(tile, who))
    with torch.autocast(a.device.type, enabled=False):
        p = lse_problem(a, b, scale, None, None, who)
        if p.a.shape[0] == 0 or p.b.shape[0] == 0:
            raise ValueError(f"{who}: a and b need at least one row each")
        return TiledLSERowsCols.apply(p.a, p.b, p.scale_vec[0], tiles)


def tiled_softmax_moment(
    a: Tensor,
    b: Tensor,
    scale: Scale,
    lse: Tensor,
    *,
    row_ids: Tensor | None = None,
    col_ids: Tensor | None = None,
    tile: Tile | None = None,
) -> Tensor:
    """(R,) ``Σ_j softmax_ij <a_i, b_j>`` under the row softmax whose log-partition is
    ``lse`` (R,) (from :func:`tiled_logsumexp` with the same arguments); no gradient,
    PyTorch tiles. This is d lse_i / d scale_i (iSogCLR's temperature gradient needs it)."""
    who = "tiled_softmax_moment"
    row_ids, col_ids = check_operands(a, b, row_ids, col_ids, who)
    if not isinstance(lse, Tensor) or lse.shape != (a.shape[0],):
        shape = tuple(lse.shape) if isinstance(lse, Tensor) else type(lse).__name__
        raise ValueError(f"{who}: lse must have shape ({a.shape[0]},), got {shape}")
    tiles = TorchTiles(parse_tile(tile, who))
    with torch.no_grad(), torch.autocast(a.device.type, enabled=False):
        p = lse_problem(a, b, scale, row_ids, col_ids, who)
        return tiles.moment(p, lse.to(p.a.dtype))
