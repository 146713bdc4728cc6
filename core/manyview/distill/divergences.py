"""Divergences between the teacher's and the student's categorical distributions, from logits.

Forward KL is Hinton et al.'s KD term ("Distilling the Knowledge in a Neural Network", 2015);
the generalised Jensen-Shannon divergence with weight α is UniSD's per-token divergence
(Jin et al., "UniSD: unified self-distillation for LLMs", arXiv 2605.06597, 2026; official
code ``Ahren09/UniSD``, ``src/trainers/unisd_trainer.py``).

Every function takes logits over the last dimension (any leading shape), works on
log-probabilities only (``log_softmax`` and ``logsumexp``, never a softmax followed by a
division) in float32 or wider, and returns one value per row: the leading shape, unreduced.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from manyview.losses.base import compute_dtype

__all__ = ["DIVERGENCES", "divergence", "jsd", "kl", "kl_from_log_probs", "reverse_kl"]

DIVERGENCES: tuple[str, ...] = ("forward", "reverse", "jsd")
"""The names :func:`divergence` accepts."""


def _log_probs(logits: Tensor) -> Tensor:
    return torch.log_softmax(logits.to(compute_dtype(logits)), dim=-1)


def _check_pair(teacher_logits: Tensor, student_logits: Tensor) -> None:
    if teacher_logits.shape != student_logits.shape:
        raise ValueError(
            f"divergence: teacher logits {tuple(teacher_logits.shape)} and student logits "
            f"{tuple(student_logits.shape)} must have the same shape"
        )


def kl_from_log_probs(log_p: Tensor, log_q: Tensor) -> Tensor:
    r""":math:`\mathrm{KL}(p\|q)=\sum_c p_c(\log p_c-\log q_c)` over the last dimension.

    Both arguments are log-probabilities (finite where ``p > 0``)."""
    return (log_p.exp() * (log_p - log_q)).sum(dim=-1)


def kl(teacher_logits: Tensor, student_logits: Tensor) -> Tensor:
    r"""Forward KL :math:`\mathrm{KL}(p_T\|p_S)` per row, with :math:`p=\mathrm{softmax}`.

    Mass-covering: the student is pushed to put mass wherever the teacher does (Hinton KD,
    UniSD's α = 0). Equals ``F.kl_div(log p_S, log p_T, log_target=True).sum(-1)``."""
    _check_pair(teacher_logits, student_logits)
    return kl_from_log_probs(_log_probs(teacher_logits), _log_probs(student_logits))


def reverse_kl(teacher_logits: Tensor, student_logits: Tensor) -> Tensor:
    r"""Reverse KL :math:`\mathrm{KL}(p_S\|p_T)` per row (mode-seeking; UniSD's α = 1)."""
    _check_pair(teacher_logits, student_logits)
    return kl_from_log_probs(_log_probs(student_logits), _log_probs(teacher_logits))


def jsd(teacher_logits: Tensor, student_logits: Tensor, alpha: float = 0.5) -> Tensor:
    r"""UniSD's generalised Jensen-Shannon divergence with weight α, per row.

    α = 0 gives :math:`\mathrm{KL}(p_T\|p_S)`, α = 1 gives :math:`\mathrm{KL}(p_S\|p_T)`;
    otherwise, with the mixture :math:`M=(1-\alpha)p_S+\alpha p_T`,

    .. math:: \mathrm{JSD}_\alpha = \alpha\,\mathrm{KL}(p_T\|M) + (1-\alpha)\,\mathrm{KL}(p_S\|M),

    where :math:`\log M` is a ``logsumexp`` of the log-probabilities plus the log weights.
    Symmetric and bounded by log 2 at α = 0.5 (the ordinary JSD).

    Args:
        teacher_logits: (..., C).
        student_logits: (..., C), the same shape.
        alpha: α in [0, 1] (UniSD's default is 0, forward KL).
    """
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"jsd: alpha must be in [0, 1], got {alpha}")
    if alpha == 0.0:
        return kl(teacher_logits, student_logits)
    if alpha == 1.0:
        return reverse_kl(teacher_logits, student_logits)
    _check_pair(teacher_logits, student_logits)
    log_t = _log_probs(teacher_logits)
    log_s = _log_probs(student_logits)
    log_m = torch.logsumexp(
        torch.stack((log_s + math.log(1.0 - alpha), log_t + math.log(alpha))), dim=0
    )
    return alpha * kl_from_log_probs(log_t, log_m) + (1.0 - alpha) * kl_from_log_probs(log_s, log_m)


def divergence(
    name: str, teacher_logits: Tensor, student_logits: Tensor, *, alpha: float = 0.5
) -> Tensor:
    """The divergence called ``name`` ("forward", "reverse" or "jsd" with ``alpha``), per row."""
    if name == "forward":
        return kl(teacher_logits, student_logits)
    if name == "reverse":
        return reverse_kl(teacher_logits, student_logits)
    if name == "jsd":
        return jsd(teacher_logits, student_logits, alpha)
    raise ValueError(f"divergence must be one of {', '.join(map(repr, DIVERGENCES))}, got {name!r}")
