"""Divergence clipping ("JSD-Clip") of UniSD (Jin et al. 2026, "UniSD", arXiv 2605.06597;
official code ``Ahren09/UniSD``, ``src/trainers/unisd_trainer.py``): cap each token's
divergence before weighting and reduction, so a few wildly disagreeing tokens cannot
dominate a batch."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from manyview.distill.base import DistillationLoss
from manyview.distill.reduction import check_mask
from manyview.options import check_positive


def quantile(values: Tensor, p: float) -> Tensor:
    """The p-quantile of a 1-D tensor with linear interpolation (``torch.quantile``'s default),
    by sorting, so that it has no size limit."""
    v = values.sort().values
    pos = p * (v.numel() - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, v.numel() - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


class DivergenceClip(DistillationLoss):
    r"""Wrap a per-token divergence loss and cap every item: :math:`\ell\leftarrow\min(\ell,\kappa)`.

    The base loss computes its unreduced values (``base.per_item``), they are clipped, and
    the base's own masked, weighted reduction (``base.reduce``) gives the loss, UniSD's

    .. math:: \mathcal{L} = \frac1B\sum_b\frac{\sum_t m_t w_t \min(\ell_t,\kappa)}{\sum_t m_t w_t}.

    κ is static (``kappa``) or adaptive: with ``quantile=p`` it is the p-quantile of the
    valid (mask True) values of the batch, recomputed per call and detached (UniSD uses
    p = 0.99). Clipped items get no gradient, like UniSD's ``clamp(max=κ)``.

    Only the base's per-item term is clipped: for :class:`~manyview.distill.kd.KD` that is
    the soft term, so a KD base must have ``alpha=1`` (add a hard-label term separately).

    Args:
        base: a registered loss name (default ``"manyview:kd"``, the built-in KD) created with
            ``base_kwargs``, or a loss
            module with ``per_item(student, targets, mask=None, **kw)`` and
            ``reduce(values, mask=None, weights=None)`` (``kd``, ``feature``,
            ``token_contrast``).
        base_kwargs: keyword arguments for a base given by name.
        kappa: the static cap κ > 0 (default 10, UniSD's).
        quantile: p in (0, 1] for the adaptive cap instead of ``kappa`` (default ``None``).

    Inputs: those of the base, e.g. for ``kd`` ``views`` student logits (N, C) or
    (N, T, C), ``targets`` teacher logits, optional ``mask`` and ``weights``. Output: a 0-dim
    tensor.

    Example::

        loss = manyview.create("loss", "divergence_clip", base="kd",
                               base_kwargs={"temperature": 1.0, "divergence": "jsd"},
                               quantile=0.99)
        value = loss(student_logits, targets=teacher_logits, mask=completion_mask)
    """

    def __init__(
        self,
        base: str | nn.Module = "manyview:kd",
        *,
        base_kwargs: Mapping[str, Any] | None = None,
        kappa: float = 10.0,
        quantile: float | None = None,
    ) -> None:
        super().__init__()
        who = "DivergenceClip"
        if isinstance(base, str):
            import manyview

            base = manyview.create("loss", base, **dict(base_kwargs or {}))
        elif base_kwargs:
            raise ValueError(f"{who}: base_kwargs only apply to a base given by name")
        if not isinstance(base, nn.Module):
            raise ValueError(f"{who}: base must be a loss name or an nn.Module, got {base!r}")
        for method in ("per_item", "reduce"):
            if not callable(getattr(base, method, None)):
                raise ValueError(
                    f"{who}: base {type(base).__name__} has no {method}() method, so its "
                    "per-item values cannot be clipped; use 'kd', 'feature' or "
                    "'token_contrast', or add per_item/reduce to it"
                )
        if getattr(base, "alpha", 1.0) != 1.0 and hasattr(base, "hard_loss"):
            raise ValueError(
                f"{who}: the base has alpha={base.alpha}, but only its soft term is clipped; "
                "use alpha=1 and add the hard-label cross entropy as its own loss term"
            )
        self.kappa = check_positive(kappa, "kappa", who)
        if quantile is not None:
            quantile = float(quantile)
            if not 0.0 < quantile <= 1.0:
                raise ValueError(f"{who}: quantile must be in (0, 1], got {quantile}")
        self.quantile = quantile
        self.base = base
        self.student_dims = getattr(base, "student_dims", (2, 3))
        self.same_shape = getattr(base, "same_shape", True)
        self.needs = getattr(base, "needs", ("targets",))
        self.inputs = tuple(getattr(base, "inputs", ()))

    def check_targets(self, targets: Any, student: Tensor) -> Any:
        if hasattr(self.base, "check_targets"):
            return self.base.check_targets(targets, student)
        return super().check_targets(targets, student)

    def cap(self, values: Tensor, mask: Tensor | None) -> Tensor:
        """κ for these per-item values: ``kappa``, or the detached quantile of the valid ones."""
        if self.quantile is None:
            return values.new_tensor(self.kappa)
        valid = values.detach() if mask is None else values.detach()[mask.to(values.device)]
        if valid.numel() == 0:
            return values.new_tensor(float("inf"))
        return quantile(valid.flatten(), self.quantile)

    def compute(
        self,
        student: Tensor,
        *,
        targets: Any,
        labels: Tensor | None = None,
        mask: Any = None,
        weights: Any = None,
        **kwargs: Any,
    ) -> Tensor:
        values = self.base.per_item(student, targets, mask, **kwargs)
        mask = check_mask(mask, tuple(values.shape), self.loss_name)
        clipped = values.clamp(max=self.cap(values, mask))
        return self.base.reduce(clipped, mask, weights)

    def example_inputs(
        self,
        n: int = 8,
        m: int | None = None,
        d: int = 16,
        *,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> tuple[Tensor, dict[str, Any]]:
        """The base's example inputs."""
        if hasattr(self.base, "example_inputs"):
            return self.base.example_inputs(n, m, d, generator=generator, dtype=dtype)
        return super().example_inputs(n, m, d, generator=generator, dtype=dtype)

    def extra_repr(self) -> str:
        cap = f"quantile={self.quantile}" if self.quantile is not None else f"kappa={self.kappa}"
        return cap
