"""The operands of one row log-sum-exp problem (:class:`LSEProblem`) and the checks that
turn a caller's arguments into them, each failing with a one-line ``ValueError`` that names
the argument and what it must be."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

Scale = float | Tensor
"""A number, a 0-dim tensor or an (R,) tensor of per-row scales (1/τ_i)."""


@dataclass(frozen=True)
class LSEProblem:
    """``lse_i = log Σ_{j kept} exp(scale_vec_i <a_i, b_j>)``, entry (i, j) left out when
    ``row_ids[i] == col_ids[j]`` (nothing is left out when the ids are ``None``).

    Attributes:
        a: (R, D) rows; b: (C, D) columns, the same float dtype and device, contiguous.
        scale_vec: (R,) per-row scale of ``a``'s dtype.
        row_ids, col_ids: (R,) and (C,) int64, or both ``None``.
    """

    a: Tensor
    b: Tensor
    scale_vec: Tensor
    row_ids: Tensor | None = None
    col_ids: Tensor | None = None


def check_pair(a: Any, b: Any, who: str) -> None:
    """ValueError unless a (R, D) and b (C, D) are floating tensors of one dtype and device."""
    for name, t in (("a", a), ("b", b)):
        if not isinstance(t, Tensor) or t.dim() != 2:
            shape = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
            raise ValueError(f"{who}: {name} must be a 2-D tensor (rows, D), got {shape}")
        if not t.is_floating_point():
            raise ValueError(f"{who}: {name} must be floating point, got {t.dtype}")
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"{who}: a and b need the same feature size, got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    if a.dtype != b.dtype:
        raise ValueError(f"{who}: a is {a.dtype} but b is {b.dtype}")
    if a.device != b.device:
        raise ValueError(f"{who}: a is on {a.device} but b on {b.device}")


def check_operands(
    a: Any, b: Any, row_ids: Any, col_ids: Any, who: str
) -> tuple[Tensor | None, Tensor | None]:
    """:func:`check_pair` on ``a`` and ``b``, then ``(row_ids, col_ids)`` as contiguous
    int64 tensors of shapes (R,) and (C,) on ``a``'s device, or ``(None, None)``; a
    ValueError when only one is given or either is off."""
    check_pair(a, b, who)
    if (row_ids is None) != (col_ids is None):
        raise ValueError(f"{who}: give row_ids and col_ids together, or neither")
    if row_ids is None:
        return None, None
    return (
        _one_ids(row_ids, a.shape[0], "row_ids", a.device, who),
        _one_ids(col_ids, b.shape[0], "col_ids", a.device, who),
    )


def _one_ids(ids: Any, length: int, name: str, device: torch.device, who: str) -> Tensor:
    if not isinstance(ids, Tensor) or ids.dim() != 1 or ids.shape[0] != length:
        shape = tuple(ids.shape) if isinstance(ids, Tensor) else type(ids).__name__
        raise ValueError(f"{who}: {name} must have shape ({length},), got {shape}")
    if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
        raise ValueError(f"{who}: {name} must be an integer tensor, got {ids.dtype}")
    if ids.device != device:
        raise ValueError(f"{who}: {name} is on {ids.device}, the inputs on {device}")
    return ids.long().contiguous()


def computed(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """``a`` and ``b`` in the dtype the engine computes in: float32 for half precision (bf16,
    fp16), else their own (float32 or float64)."""
    if a.dtype not in (torch.float32, torch.float64):
        return a.float(), b.float()
    return a, b


def scale_vector(scale: Scale, rows: int, like: Tensor, who: str) -> Tensor:
    """``scale`` as an (R,) tensor of ``like``'s dtype, in the autograd graph when it is a
    tensor (so a 0-dim scale gets the sum of the per-row gradients)."""
    if isinstance(scale, Tensor):
        if scale.device != like.device:
            raise ValueError(f"{who}: scale is on {scale.device}, the inputs on {like.device}")
        if not scale.is_floating_point():
            raise ValueError(f"{who}: scale must be floating point, got {scale.dtype}")
        scale = scale.to(like.dtype)
        if scale.dim() == 0:
            return scale.expand(rows)
        if scale.shape == (rows,):
            return scale.contiguous()
        raise ValueError(
            f"{who}: scale must be a number, a 0-dim tensor or shape ({rows},), "
            f"got {tuple(scale.shape)}"
        )
    if isinstance(scale, bool) or not isinstance(scale, int | float):
        raise ValueError(f"{who}: scale must be a number or a tensor, got {type(scale).__name__}")
    return like.new_full((rows,), float(scale))


def lse_problem(
    a: Tensor, b: Tensor, scale: Scale, row_ids: Tensor | None, col_ids: Tensor | None, who: str
) -> LSEProblem:
    """The :class:`LSEProblem` of checked operands (:func:`check_operands`):
    computed in float32 for half precision, contiguous, the scale as an (R,) vector. Call it
    with autocast disabled, where the problem is solved."""
    a, b = computed(a, b)
    scale_vec = scale_vector(scale, a.shape[0], a, who)
    return LSEProblem(a.contiguous(), b.contiguous(), scale_vec, row_ids, col_ids)
