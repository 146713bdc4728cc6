"""The PyTorch tiles: the exact row log-sum-exp of an :class:`LSEProblem`, its gradients and
its softmax moment, and CLIP's rows-and-columns form, one (tile_r x tile_c) block at a time.

The forward walks row tiles x column tiles and merges each tile's LSE into a running one
(an online logsumexp, as in Inf-CL: Cheng et al., "Breaking the Memory Barrier: Near
Infinite Batch Size Scaling for Contrastive Loss", CVPR 2025, arXiv 2410.17243, and
FlashAttention); the backward recomputes each tile's probabilities P_ij = exp(x_ij - lse_i)
from the inputs and the (R,) result. Memory is O((R + C)·D + tile_r·tile_c) instead of
O(R·C). Every walk goes through one :class:`TileGrid`. This is the reference the Triton
kernels are checked against, and the CPU path.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from manyview.losses.engine.inputs import LSEProblem


def exclude_matching(x: Tensor, row_ids: Tensor, col_ids: Tensor) -> Tensor:
    """Set the entries of the (rows, cols) tile ``x`` whose row and column ids match to -inf,
    in place; returns ``x``."""
    return x.masked_fill_(row_ids[:, None] == col_ids[None, :], float("-inf"))


def tile_lse(x: Tensor, dim: int) -> Tensor:
    """logsumexp of a tile along ``dim``, overwriting ``x``; -inf where every entry is."""
    top = x.amax(dim=dim, keepdim=True)
    shift = torch.where(torch.isfinite(top), top, 0.0)
    return x.sub_(shift).exp_().sum(dim=dim).log_().add_(shift.squeeze(dim))


def _id_ranges(ids: Tensor, tile: int) -> list[tuple[int, int]]:
    """(min, max) of ``ids`` in each consecutive tile, to skip masking tiles that cannot
    hold an excluded entry."""
    n = ids.shape[0]
    if n == 0:
        return []
    pad = (-n) % tile
    lo = torch.nn.functional.pad(ids, (0, pad), value=int(ids.max())).view(-1, tile).amin(1)
    hi = torch.nn.functional.pad(ids, (0, pad), value=int(ids.min())).view(-1, tile).amax(1)
    return list(zip(lo.tolist(), hi.tolist(), strict=True))


class TileGrid:
    """The (tile_r x tile_c) tiles of an (R x C) matrix, row tiles outer, and its exclusion
    rule: entry (i, j) is left out when ``row_ids[i] == col_ids[j]`` (ids (R,) and (C,), or
    both ``None``). A tile whose id ranges do not overlap is never masked."""

    def __init__(
        self,
        rows: int,
        cols: int,
        tile: tuple[int, int],
        row_ids: Tensor | None = None,
        col_ids: Tensor | None = None,
    ) -> None:
        self.rows, self.cols = rows, cols
        self.tile_r, self.tile_c = tile
        self.row_ids, self.col_ids = row_ids, col_ids
        self._ranges = None
        if row_ids is not None and col_ids is not None:
            self._ranges = _id_ranges(row_ids, self.tile_r), _id_ranges(col_ids, self.tile_c)

    def __iter__(self) -> Iterator[tuple[slice, slice]]:
        """``(r, c)``: the row and the column slice of every tile (ragged at the ends)."""
        for r0 in range(0, self.rows, self.tile_r):
            r = slice(r0, min(r0 + self.tile_r, self.rows))
            for c0 in range(0, self.cols, self.tile_c):
                yield r, slice(c0, min(c0 + self.tile_c, self.cols))

    def exclude(self, x: Tensor, r: slice, c: slice) -> Tensor:
        """``x``, the (r, c) tile, with its excluded entries set to -inf in place."""
        if self._ranges is None:
            return x
        rows, cols = (
            self._ranges[0][r.start // self.tile_r],
            self._ranges[1][c.start // self.tile_c],
        )
        if rows[0] <= cols[1] and cols[0] <= rows[1]:
            exclude_matching(x, self.row_ids[r], self.col_ids[c])  # type: ignore[index]
        return x


def _softmax_shift(lse: Tensor) -> Tensor:
    """``lse`` with -inf (a row whose every entry is left out) as +inf, so that
    exp(x - shift) = 0 there."""
    return lse.masked_fill(lse == float("-inf"), float("inf"))


@dataclass(frozen=True)
class TorchTiles:
    """The row-LSE problem on the PyTorch tiles of ``tile = (rows, cols)``. No method records
    an autograd graph; memory is O(tile_r·tile_c) beyond O((R + C)·D)."""

    tile: tuple[int, int]

    def grid(self, p: LSEProblem) -> TileGrid:
        return TileGrid(p.a.shape[0], p.b.shape[0], self.tile, p.row_ids, p.col_ids)

    @torch.no_grad()
    def forward(self, p: LSEProblem) -> Tensor:
        """(R,) ``lse_i = log Σ_{j kept} exp(scale_i <a_i, b_j>)``; ``-inf`` for a row whose
        every entry is left out."""
        lse = p.a.new_full((p.a.shape[0],), float("-inf"))
        scaled = p.a * p.scale_vec[:, None]
        grid = self.grid(p)
        for r, c in grid:
            x = grid.exclude(scaled[r] @ p.b[c].T, r, c)
            torch.logaddexp(lse[r], tile_lse(x, 1), out=lse[r])
        return lse

    @torch.no_grad()
    def backward(
        self, p: LSEProblem, lse: Tensor, grad_lse: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Gradients of ``Σ_i grad_lse_i · lse_i``, recomputing each tile.

        With P_ij = exp(scale_i s_ij - lse_i) on the kept entries (0 elsewhere, and on rows
        whose lse is ``-inf``) and W = grad_lse_i · P_ij:

        - grad_a = scale ⊙ (W @ b)   (R, D)
        - grad_b = (scale ⊙ W)ᵀ @ a  (C, D)
        - grad_scale_i = Σ_j W_ij s_ij = <a_i, (W @ b)_i>   (R,)

        ``lse`` (R,) is :meth:`forward`'s result, ``grad_lse`` (R,) its upstream gradient.
        Returns ``(grad_a, grad_b, grad_scale_vec)``.
        """
        shift = _softmax_shift(lse)
        scaled = p.a * p.scale_vec[:, None]
        # W = g ⊙ P: the row factor g is applied to the (rows, D) operands and results,
        # never to a (tile_r, tile_c) tile.
        weighted = scaled * grad_lse[:, None]
        pb = torch.zeros_like(p.a)  # Σ_j P_ij b_j
        grad_b = torch.zeros_like(p.b)
        grid = self.grid(p)
        for r, c in grid:
            prob = grid.exclude(scaled[r] @ p.b[c].T, r, c).sub_(shift[r, None]).exp_()
            pb[r].addmm_(prob, p.b[c])
            grad_b[c].addmm_(prob.T, weighted[r])
        wb = pb * grad_lse[:, None]  # Σ_j W_ij b_j
        return wb * p.scale_vec[:, None], grad_b, (p.a * wb).sum(dim=1)

    @torch.no_grad()
    def moment(self, p: LSEProblem, lse: Tensor) -> Tensor:
        """(R,) ``Σ_j P_ij s_ij``: the mean similarity under each row's softmax.

        ``P_ij = exp(scale_i s_ij - lse_i)`` on the kept entries; this is d lse_i / d scale_i,
        which iSogCLR's temperature step needs. 0 on rows whose lse is ``-inf``.
        """
        out = torch.zeros_like(lse)
        shift = _softmax_shift(lse)
        grid = self.grid(p)
        for r, c in grid:
            s = p.a[r] @ p.b[c].T
            prob = grid.exclude(s * p.scale_vec[r, None], r, c).sub_(shift[r, None]).exp_()
            out[r] += (prob * s).sum(dim=1)
        return out

    @torch.no_grad()
    def rows_cols_forward(self, a: Tensor, b: Tensor, scale: Tensor) -> tuple[Tensor, Tensor]:
        """``(row_lse (R,), col_lse (C,))`` of ``scale * a @ b.T`` (0-dim ``scale``, no
        exclusions) in one walk: each tile's row LSE is merged into the rows' running LSE and
        its column LSE into the columns'."""
        row_lse = a.new_full((a.shape[0],), float("-inf"))
        col_lse = a.new_full((b.shape[0],), float("-inf"))
        scaled = a * scale
        for r, c in TileGrid(a.shape[0], b.shape[0], self.tile):
            x = scaled[r] @ b[c].T
            torch.logaddexp(row_lse[r], tile_lse(x.clone(), 1), out=row_lse[r])  # x again below
            torch.logaddexp(col_lse[c], tile_lse(x, 0), out=col_lse[c])
        return row_lse, col_lse

    @torch.no_grad()
    def rows_cols_backward(
        self,
        a: Tensor,
        b: Tensor,
        scale: Tensor,
        lse: tuple[Tensor, Tensor],
        grad: tuple[Tensor, Tensor],
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Gradients of ``Σ_i g^r_i row_lse_i + Σ_j g^c_j col_lse_j`` (``lse`` and ``grad``:
        the (rows, columns) pairs), recomputing each tile once: W = g^r_i exp(x_ij - row_lse_i)
        + g^c_j exp(x_ij - col_lse_j), grad_a = scale·W @ b, grad_b = scale·Wᵀ @ a,
        grad_scale = Σ W ∘ s (0-dim)."""
        (row_lse, col_lse), (grad_rows, grad_cols) = lse, grad
        grad_a = torch.zeros_like(a)
        grad_b = torch.zeros_like(b)
        grad_scale = a.new_zeros(())
        scaled = a * scale
        for r, c in TileGrid(a.shape[0], b.shape[0], self.tile):
            x = scaled[r] @ b[c].T
            w = (x - row_lse[r, None]).exp_().mul_(grad_rows[r, None])
            w += (x - col_lse[None, c]).exp_().mul_(grad_cols[None, c])
            wb = w @ b[c]  # (tile_r, D)
            grad_a[r] += wb * scale
            grad_b[c].addmm_(w.T, a[r], alpha=float(scale))
            grad_scale += (a[r] * wb).sum()
        return grad_a, grad_b, grad_scale
