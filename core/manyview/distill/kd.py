"""Knowledge distillation (Hinton, Vinyals, Dean 2015, "Distilling the Knowledge in a Neural
Network"), with the divergences and token reduction of UniSD (Jin et al. 2026)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from manyview.distill.base import PerItemLoss
from manyview.distill.divergences import DIVERGENCES, divergence
from manyview.distill.reduction import check_mask, masked_mean, zero_masked
from manyview.losses.base import check_temperature
from manyview.options import check_fraction


class KD(PerItemLoss):
    r"""Hinton KD: tempered teacher and student softmaxes, plus an optional hard-label term.

    With student logits :math:`z_s`, teacher logits :math:`z_t`, temperature T and a
    divergence D over the classes (the last dimension),

    .. math:: \mathcal{L} = \alpha\,\overline{T^2\,D\big(\sigma(z_t/T),\,\sigma(z_s/T)\big)}
              + (1-\alpha)\,\overline{\mathrm{CE}\big(y,\,\sigma(z_s)\big)},

    where the bar is the mean over rows, or for token logits ``(N, T, C)`` UniSD's masked
    mean over each sequence's tokens followed by the mean over sequences (see
    :mod:`manyview.distill.reduction`). The :math:`T^2` factor keeps the soft term's gradient
    :math:`T(\sigma(z_s/T)-\sigma(z_t/T))` comparable across temperatures. ``weights`` weight
    the soft term only (UniSD's multi-teacher agreement weights), as
    :math:`\sum w\ell/\sum w` over rows, or per sequence
    :math:`\sum_t m w\ell/\max(1, \sum_t m w)` for tokens (UniSD's clamp); the hard term is
    an unweighted mean. An all-masked sequence counts as 0 in the mean over sequences.

    Divergences (UniSD's α): ``"forward"`` KL(p_T‖p_S) (Hinton; UniSD α = 0), ``"reverse"``
    KL(p_S‖p_T) (α = 1), ``"jsd"`` the generalised JSD with weight ``jsd_alpha``.

    Args:
        temperature: T (default 4, RepDistiller's CIFAR-100 setting; UniSD uses 1).
        alpha: weight of the soft term in [0, 1] (default 1: soft term only); the hard-label
            cross entropy gets 1 - alpha and then ``labels`` are required. RepDistiller
            writes its total as 0.1 CE + 0.9 KD, which is ``alpha=0.9`` up to a factor 1.
        divergence: ``"forward"`` (default), ``"reverse"`` or ``"jsd"``.
        jsd_alpha: α of the generalised JSD in [0, 1] (default 0.5, the symmetric JSD).

    Inputs: ``views`` student logits (N, C) or token logits (N, T, C); ``targets`` teacher
    logits of the same shape; optional ``labels`` (N,) / (N, T) class indices (required when
    ``alpha < 1``; positions outside ``mask`` are ignored, e.g. -100); ``mask`` (N,) /
    (N, T) bool of valid rows or tokens; ``weights`` non-negative, (N,) per row, (N, T) per
    token, or (N,) per sequence for token logits (then they weight the mean over sequences; a
    sequence weight broadcast over its tokens, as UniSD's sequence-level agreement weights,
    only acts on a sequence whose weights sum to less than 1).
    Output: a 0-dim tensor.

    Example::

        loss = manyview.create("loss", "kd", temperature=4.0, alpha=0.9)
        value = loss(student_logits, targets=teacher_logits.detach(), labels=y)
    """

    student_dims = (2, 3)
    inputs = ("labels",)

    def __init__(
        self,
        temperature: float = 4.0,
        *,
        alpha: float = 1.0,
        divergence: str = "forward",
        jsd_alpha: float = 0.5,
    ) -> None:
        super().__init__()
        self.temperature = check_temperature(temperature, "temperature", "KD")
        self.alpha = check_fraction(alpha, "alpha (the soft term's weight)", "KD")
        if divergence not in DIVERGENCES:
            raise ValueError(
                f"KD: divergence must be one of {', '.join(map(repr, DIVERGENCES))}, "
                f"got {divergence!r}"
            )
        self.divergence = divergence
        self.jsd_alpha = check_fraction(jsd_alpha, "jsd_alpha", "KD")

    def per_item(self, student: Tensor, targets: Tensor, mask: Tensor | None = None) -> Tensor:
        """Unreduced soft term :math:`T^2 D(\\sigma(z_t/T), \\sigma(z_s/T))` per row ``(N,)`` or
        token ``(N, T)``; 0 where ``mask`` is False. Inputs are not checked here (forward does).
        """
        t = self.temperature
        values = (t * t) * divergence(
            self.divergence, targets / t, student / t, alpha=self.jsd_alpha
        )
        values = zero_masked(values, mask, self.loss_name)
        return values

    def hard_loss(self, student: Tensor, labels: Any, mask: Any = None) -> Tensor:
        """Cross entropy of the untempered student logits with ``labels``, reduced like the
        soft term (unweighted). Labels at masked-out positions are ignored (e.g. -100)."""
        who = self.loss_name
        shape = tuple(student.shape[:-1])
        if not isinstance(labels, Tensor) or tuple(labels.shape) != shape:
            got = tuple(labels.shape) if isinstance(labels, Tensor) else type(labels).__name__
            raise ValueError(f"{who}: labels must be class indices of shape {shape}, got {got}")
        if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
            raise ValueError(f"{who}: labels must be an integer tensor, got {labels.dtype}")
        mask = check_mask(mask, shape, who)
        labels = labels.to(student.device)
        keep = torch.ones_like(labels, dtype=torch.bool) if mask is None else mask.to(labels.device)
        n_classes = student.shape[-1]
        if ((labels < 0) | (labels >= n_classes))[keep].any():
            raise ValueError(
                f"{who}: labels must be in [0, {n_classes}) at valid positions; mask out padding"
            )
        safe = torch.where(keep, labels, torch.zeros_like(labels))
        log_p = torch.log_softmax(student, dim=-1)
        ce = -log_p.gather(-1, safe.unsqueeze(-1)).squeeze(-1)
        return masked_mean(ce, keep, None, who=who)

    def compute(
        self,
        student: Tensor,
        *,
        targets: Tensor,
        labels: Tensor | None = None,
        mask: Any = None,
        weights: Any = None,
        **_: Any,
    ) -> Tensor:
        loss = student.new_zeros(())
        if self.alpha > 0:
            soft = self.reduce(self.per_item(student, targets, mask), mask, weights)
            loss = loss + self.alpha * soft
        if self.alpha < 1:
            if labels is None:
                raise ValueError(
                    f"KD: alpha={self.alpha} < 1 gives the hard-label term a weight of "
                    f"{1 - self.alpha:g}, so `labels=` are required; pass labels or set alpha=1"
                )
            loss = loss + (1 - self.alpha) * self.hard_loss(student, labels, mask)
        return loss

    def _example_shapes(
        self, n: int, m: int | None, d: int
    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Student and teacher logits ``(n, d)``, or token logits ``(n, m, d)`` when ``m`` is
        given."""
        shape = (n, d) if m is None else (n, m, d)
        return shape, shape

    def _example_extras(self, student: Tensor, generator: torch.Generator | None) -> dict[str, Any]:
        """Labels when ``alpha < 1``."""
        if self.alpha == 1:
            return {}
        classes, shape = student.shape[-1], student.shape[:-1]  # (n,) rows or (n, m) tokens
        return {"labels": torch.randint(0, classes, shape, generator=generator)}

    def extra_repr(self) -> str:
        return (
            f"temperature={self.temperature}, alpha={self.alpha}, "
            f"divergence={self.divergence!r}, jsd_alpha={self.jsd_alpha}"
        )
