"""Token-level contrastive distillation of UniSD (Jin, Wang, Fu, Xiao, Luo, Liu, Prakash,
Hester, Wang, Kumar 2026, "UniSD", arXiv 2605.06597; official code ``Ahren09/UniSD``,
``src/trainers/unisd_trainer.py``)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from manyview.distill.base import PerItemLoss, check_tensor
from manyview.distill.reduction import zero_masked
from manyview.options import check_non_negative


class TokenContrast(PerItemLoss):
    r"""Hinge pulling the student's token log-probs to a positive teacher, away from a negative.

    With :math:`s_t=\log p_S(y_t\mid x, y_{<t})` (student, plain prompt),
    :math:`a_t=\log p_T(y_t\mid\tilde x, y_{<t})` (teacher with the privileged context) and
    :math:`b_t=\log p_T(y_t\mid\tilde x^-, y_{<t})` (teacher with a wrong demonstration),

    .. math:: \ell_t = \max\big(0,\ m + |s_t-a_t| - |s_t-b_t|\big),\qquad
              \mathcal{L} = \frac1B\sum_b \frac{\sum_t m_{bt}\ell_{bt}}{\sum_t m_{bt}},

    zero once the student is closer to the positive than to the negative by the margin.
    UniSD adds it with weight λ_c = 0.1 (weight it outside this loss).

    Args:
        margin: m ≥ 0 (default 0.5, UniSD's).

    Inputs: ``views`` student log-probs of the sampled tokens s (N, T); ``targets`` the
    positive teacher's a (N, T); ``negatives`` the negative teacher's b (N, T), required;
    optional ``mask`` (N, T) bool of completion tokens and ``weights`` (N,) or (N, T).
    Output: a 0-dim tensor.

    Example::

        loss = manyview.create("loss", "token_contrast", margin=0.5)
        value = loss(s, targets=a, negatives=b, mask=completion_mask)
    """

    student_dims = (2,)
    needs = ("targets", "negatives")
    _item_inputs = ("negatives",)

    def __init__(self, margin: float = 0.5) -> None:
        super().__init__()
        self.margin = check_non_negative(margin, "margin", "TokenContrast")

    def check_negatives(self, negatives: Any, student: Tensor) -> Tensor:
        who = self.loss_name
        if negatives is None:
            raise ValueError(
                f"{who} needs the negative-context teacher's token log-probs as `negatives=` "
                f"(shape {tuple(student.shape)})"
            )
        b = check_tensor(negatives, "negatives", who, min_dim=2, max_dim=2)
        if b.shape != student.shape:
            raise ValueError(
                f"{who}: negatives {tuple(b.shape)} must have the student's shape "
                f"{tuple(student.shape)}"
            )
        if b.requires_grad:
            raise ValueError(
                f"{who}: negatives require grad, so the loss would train the teacher; compute "
                "them under torch.no_grad() or pass negatives.detach()"
            )
        return b.to(device=student.device, dtype=student.dtype)

    def per_item(
        self,
        student: Tensor,
        targets: Tensor,
        mask: Tensor | None = None,
        *,
        negatives: Any = None,
    ) -> Tensor:
        """The hinge per token ``(N, T)``; 0 where ``mask`` is False."""
        b = self.check_negatives(negatives, student)
        values = torch.relu(self.margin + (student - targets).abs() - (student - b).abs())
        values = zero_masked(values, mask, self.loss_name)
        return values

    def _example_values(
        self, shape: tuple[int, ...], generator: torch.Generator | None, dtype: torch.dtype
    ) -> Tensor:
        """Token log-probs of ``shape``, in (-3, 0]."""
        return -3 * torch.rand(shape, generator=generator, dtype=dtype)

    def _example_extras(self, student: Tensor, generator: torch.Generator | None) -> dict[str, Any]:
        """With the student's and the positive teacher's log-probs of ``d`` tokens (``m`` is
        ignored), the negative teacher's, and a mask that drops the last token of every other
        sequence."""
        mask = torch.ones(student.shape, dtype=torch.bool)
        if student.shape[1] > 1:
            mask[::2, -1] = False
        negatives = self._example_values(student.shape, generator, student.dtype)
        return {"negatives": negatives, "mask": mask}

    def extra_repr(self) -> str:
        return f"margin={self.margin}"
