"""The autograd Functions of the tiled forms: each saves only its inputs and the (R,) (and
(C,)) results, and its backward recomputes the tiles (Inf-CL's memory argument, Cheng et al.,
CVPR 2025, arXiv 2410.17243)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from manyview.losses.engine.inputs import LSEProblem
from manyview.losses.engine.tiles import TorchTiles


class LSEOps(NamedTuple):
    """One implementation of the row-LSE problem: ``forward(problem) -> lse (R,)`` and
    ``backward(problem, lse, grad_lse) -> (grad_a, grad_b, grad_scale_vec)``, with the
    contract of :meth:`TorchTiles.forward` and :meth:`TorchTiles.backward`."""

    forward: Callable[[LSEProblem], Tensor]
    backward: Callable[[LSEProblem, Tensor, Tensor], tuple[Tensor, Tensor, Tensor]]


def _wanted(
    ctx: Any, grads: Sequence[Tensor], inputs: int, first: int = 0
) -> tuple[Tensor | None, ...]:
    """The gradients autograd asked for of the Function's arguments ``first ..`` (None for
    the others), padded with None to ``inputs`` of them."""
    need = ctx.needs_input_grad[first:]
    return tuple(g if need[i] else None for i, g in enumerate(grads)) + (None,) * (
        inputs - len(grads)
    )


class TiledLSE(torch.autograd.Function):
    """``lse = ops.forward(problem)``; the backward is ``ops.backward``, which recomputes
    the tiles. Arguments: the :class:`LSEOps`, then ``a``, ``b``, ``scale_vec``, ``row_ids``,
    ``col_ids`` (an :class:`LSEProblem`'s fields, in order)."""

    @staticmethod
    def forward(ctx: Any, ops: LSEOps, *operands: Tensor | None) -> Tensor:  # type: ignore[override]
        lse = ops.forward(LSEProblem(*operands))  # type: ignore[arg-type]
        ctx.save_for_backward(*operands, lse)
        ctx.ops = ops
        return lse

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_lse: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        *operands, lse = ctx.saved_tensors
        grads = ctx.ops.backward(LSEProblem(*operands), lse, grad_lse.contiguous())
        return (None, *_wanted(ctx, grads, 5, first=1))


class TiledLSERowsCols(torch.autograd.Function):
    """``(row_lse, col_lse)`` of ``scale * a @ b.T`` by :meth:`TorchTiles.rows_cols_forward`
    (0-dim ``scale``); the backward recomputes each tile once."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, a: Tensor, b: Tensor, scale: Tensor, tiles: TorchTiles
    ) -> tuple[Tensor, Tensor]:
        row_lse, col_lse = tiles.rows_cols_forward(a, b, scale)
        ctx.save_for_backward(a, b, scale, row_lse, col_lse)
        ctx.tiles = tiles
        return row_lse, col_lse

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_rows: Tensor, grad_cols: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        a, b, scale, row_lse, col_lse = ctx.saved_tensors
        grads = ctx.tiles.rows_cols_backward(
            a, b, scale, (row_lse, col_lse), (grad_rows, grad_cols)
        )
        return _wanted(ctx, grads, 4)
