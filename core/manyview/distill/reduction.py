"""Masked, weighted means of per-row or per-token distillation losses (UniSD's reduction).

For per-row values ``(N,)``: :math:`\\sum_i m_i w_i \\ell_i / \\sum_i m_i w_i`.
For per-token values ``(N, T)``, exactly as UniSD's trainer (Jin et al. 2026; official code
``Ahren09/UniSD``, ``src/trainers/unisd_trainer.py``):

.. math:: \\mathcal{L} = \\frac{1}{N}\\sum_{b=1}^{N}
          \\frac{\\sum_t m_{bt} w_{bt} \\ell_{bt}}{\\max(1, \\sum_t m_{bt} w_{bt})},

a weighted mean within each sequence whose denominator is clamped at 1, then a plain mean
over all N sequences: an all-masked sequence counts as 0. Because of the clamp, weights whose
sum over a sequence is below 1 scale that sequence down instead of cancelling (UniSD's
sequence-level agreement weights, ``w_b`` on each token, act only there). Per-sequence
weights ``u`` of shape ``(N,)`` (a manyview extension) instead weight the mean over the
sequences, :math:`\\sum_b u_b \\mathcal{L}_b / \\sum_b u_b`, an all-masked sequence still
counting as 0. An all-masked batch gives 0 (still a function of the inputs, so ``backward``
runs).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["check_mask", "check_weights", "masked_mean"]


def check_mask(mask: Any, shape: tuple[int, ...], who: str) -> Tensor | None:
    """``None``, or a bool tensor of exactly ``shape`` (True = a valid row or token)."""
    if mask is None:
        return None
    if not isinstance(mask, Tensor):
        raise ValueError(f"{who}: mask must be a bool tensor {shape}, got {type(mask).__name__}")
    if tuple(mask.shape) != tuple(shape):
        raise ValueError(
            f"{who}: mask must have shape {tuple(shape)} (True marks valid items), got "
            f"{tuple(mask.shape)}"
        )
    if mask.dtype != torch.bool:
        if mask.is_floating_point() or mask.is_complex():
            raise ValueError(f"{who}: mask must be bool (or 0/1 integers), got {mask.dtype}")
        mask = mask != 0
    return mask


def zero_masked(values: Tensor, mask: Any, who: str) -> Tensor:
    """``values`` with the entries where ``mask`` (checked against their shape) is False
    set to 0; unchanged without a mask."""
    mask = check_mask(mask, tuple(values.shape), who)
    if mask is None:
        return values
    return torch.where(mask.to(values.device), values, values.new_zeros(()))


def check_weights(weights: Any, shape: tuple[int, ...], who: str) -> Tensor | None:
    """``None``, or finite non-negative weights of ``shape`` or ``(shape[0],)``."""
    if weights is None:
        return None
    if not isinstance(weights, Tensor):
        raise ValueError(f"{who}: weights must be a tensor, got {type(weights).__name__}")
    allowed = {tuple(shape), (shape[0],)}
    if tuple(weights.shape) not in allowed:
        listed = " or ".join(str(s) for s in sorted(allowed, key=len))
        raise ValueError(f"{who}: weights must have shape {listed}, got {tuple(weights.shape)}")
    if weights.is_complex() or weights.dtype == torch.bool:
        raise ValueError(f"{who}: weights must be real numbers, got {weights.dtype}")
    if weights.is_floating_point() and not torch.isfinite(weights).all():
        raise ValueError(f"{who}: weights contain NaN or inf")
    if (weights < 0).any():
        raise ValueError(f"{who}: weights must be non-negative")
    return weights


def _ratio(num: Tensor, den: Tensor) -> Tensor:
    # den == 0 only when every term of num is 0 too: 0 / tiny = 0, no NaN, no branch.
    return num / den.clamp_min(torch.finfo(den.dtype).tiny)


def masked_mean(
    values: Tensor,
    mask: Any = None,
    weights: Any = None,
    *,
    who: str = "distillation loss",
) -> Tensor:
    """The masked, weighted mean of ``values`` ``(N,)`` or ``(N, T)`` described above."""
    if values.dim() not in (1, 2):
        raise ValueError(
            f"{who}: per-item values must be (N,) or (N, T), got {tuple(values.shape)}"
        )
    shape = tuple(values.shape)
    mask = check_mask(mask, shape, who)
    weights = check_weights(weights, shape, who)
    keep = torch.ones(shape, dtype=torch.bool, device=values.device) if mask is None else mask
    keep = keep.to(values.device)
    values = torch.where(keep, values, torch.zeros((), dtype=values.dtype, device=values.device))
    w = keep.to(values.dtype)
    seq_weights = None
    if weights is not None:
        weights = weights.to(device=values.device, dtype=values.dtype)
        if weights.shape == shape:
            w = w * weights
        else:  # (N,) weights of token values: they weight the mean over the sequences
            seq_weights = weights
    if values.dim() == 1:
        return _ratio((w * values).sum(), w.sum())
    # UniSD: Σ_t m w ℓ / clamp(Σ_t m w, min=1) per sequence, then the mean over all N.
    per_seq = (w * values).sum(dim=1) / w.sum(dim=1).clamp(min=1.0)
    if seq_weights is None:
        return per_seq.mean()
    return _ratio((seq_weights * per_seq).sum(), seq_weights.sum())
