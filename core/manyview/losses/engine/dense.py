"""The dense (materialised) row log-sum-exp: :func:`dense_logsumexp`, the value and gradient
of :func:`~manyview.losses.engine.lse.tiled_logsumexp` from the (R x C) matrix, for problems
small enough that recomputing tiles costs more than it saves."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from manyview.losses.engine.inputs import Scale, check_operands, lse_problem
from manyview.losses.engine.tiles import exclude_matching

MASK_ROWS = 1024
"""Rows of the (rows, C) exclusion mask built at a time."""


class DenseLSE(torch.autograd.Function):
    """lse of the materialised, masked, scaled matrix; saves its softmax P (R x C) so the
    backward is two products (P @ b, Pᵀ @ a) and allocates nothing of size R x C."""

    @staticmethod
    def forward(ctx: Any, *operands: Tensor | None) -> Tensor:  # type: ignore[override]
        """``operands``: an :class:`LSEProblem`'s fields, in order."""
        a, b, scale_vec, row_ids, col_ids = operands
        x = (a * scale_vec[:, None]) @ b.T  # (R, C), the only matrix of that size
        if row_ids is not None and col_ids is not None:
            for r0 in range(0, x.shape[0], MASK_ROWS):
                r1 = min(r0 + MASK_ROWS, x.shape[0])
                exclude_matching(x[r0:r1], row_ids[r0:r1], col_ids)
        peak = x.amax(dim=1)
        peak = peak.masked_fill(peak == float("-inf"), 0.0)  # rows with nothing kept
        p = x.sub_(peak[:, None]).exp_()
        total = p.sum(dim=1)
        lse = peak + total.log()  # -inf where nothing is kept
        p.div_(total.masked_fill(total == 0, 1.0)[:, None])  # the row softmax, in place
        ctx.save_for_backward(a, b, scale_vec, p)
        return lse

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_lse: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        a, b, scale_vec, p = ctx.saved_tensors
        g = grad_lse[:, None]
        need = ctx.needs_input_grad
        wb = (p @ b) * g  # Σ_j W_ij b_j, W = g ⊙ P (0 on rows with nothing kept)
        grad_a = wb * scale_vec[:, None] if need[0] else None
        grad_b = p.T @ (a * (scale_vec[:, None] * g)) if need[1] else None
        grad_scale = (a * wb).sum(dim=1) if need[2] else None
        return grad_a, grad_b, grad_scale, None, None


def dense_logsumexp(
    a: Tensor,
    b: Tensor,
    scale: Scale,
    *,
    row_ids: Tensor | None = None,
    col_ids: Tensor | None = None,
) -> Tensor:
    """:func:`~manyview.losses.engine.lse.tiled_logsumexp`'s value and gradient from the
    materialised (R x C) matrix. Memory: that one matrix (its softmax is kept for the
    backward, which is two products and nothing more of size R x C), against the three or
    four of autograd through ``masked_fill`` and ``logsumexp``.

    Args:
        a: (R, D) anchor rows; b: (C, D) candidates, the same float dtype and device.
        scale: a number, a 0-dim or an (R,) tensor (it may require grad).
        row_ids, col_ids: (R,) and (C,) integer ids, together or not at all: entry (i, j) is
            left out when ``row_ids[i] == col_ids[j]``.

    Returns:
        (R,) ``log Σ_{j kept} exp(scale_i <a_i, b_j>)``, ``-inf`` on a row with nothing kept;
        float32 for half-precision inputs, else ``a``'s dtype. PyTorch only, autocast off.
    """
    who = "dense_logsumexp"
    row_ids, col_ids = check_operands(a, b, row_ids, col_ids, who)
    with torch.autocast(a.device.type, enabled=False):
        p = lse_problem(a, b, scale, row_ids, col_ids, who)
        if p.a.shape[0] == 0 or p.b.shape[0] == 0:  # nothing to sum: -inf, no gradient
            return p.a.sum(dim=1) * 0.0 + (float("-inf") if p.b.shape[0] == 0 else 0.0)
        return DenseLSE.apply(p.a, p.b, p.scale_vec, p.row_ids, p.col_ids)
