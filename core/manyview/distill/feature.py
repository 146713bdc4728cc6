"""Feature matching between student and teacher representations: FitNets hints (Romero,
Ballas, Kahou, Chassang, Gatta, Bengio, ICLR 2015, "FitNets: Hints for Thin Deep Nets") and
UniSD's hidden-state matching (Jin et al. 2026, arXiv 2605.06597)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from manyview.distill.base import PerItemLoss, check_targets
from manyview.distill.reduction import zero_masked
from manyview.options import check_int, check_positive

KINDS = ("mse", "cosine", "smooth_l1")


class FeatureMatching(PerItemLoss):
    r"""Match student features to (constant) teacher features, optionally through an adapter.

    With :math:`h_S` the student feature (through the learned linear adapter r when there is
    one) and :math:`h_T` the teacher's, per row or token:

    - ``"mse"``: :math:`\frac1D\|r(h_S)-h_T\|^2` (UniSD's hidden-state term; RepDistiller's
      ``HintLoss`` is the same mean squared error; FitNets writes ½‖·‖², a factor 2D apart);
    - ``"cosine"``: :math:`1-\cos(r(h_S), h_T)`;
    - ``"smooth_l1"``: the mean over D of the Huber loss with threshold ``beta``.

    Reduced as a mean over rows, or for tokens ``(N, T, D)`` UniSD's masked mean per sequence
    (denominator clamped at 1) and then a mean over all sequences; ``weights`` give
    :math:`\sum w\ell/\sum w` (:mod:`manyview.distill.reduction`).

    The adapter is FitNets' hint regressor as a linear map (RepDistiller uses a conv
    regressor on feature maps; flatten or pool those first, or pass your own projection's
    output): ``nn.Linear(student_dim, teacher_dim)``, created when both dims are given and
    differ, or when ``adapter=True``. Its parameters belong to this loss, so give them to the
    optimizer (``params = [*student.parameters(), *loss.parameters()]``).

    Args:
        kind: ``"mse"`` (default), ``"cosine"`` or ``"smooth_l1"``.
        student_dim: the student's feature size (needed for an adapter).
        teacher_dim: the teacher's feature size; defaults to ``student_dim`` when
            ``adapter=True``.
        adapter: ``None`` (default) creates one only when the dims differ; ``True`` always
            (needs ``student_dim``); ``False`` never (the dims must then be equal).
        beta: threshold of ``smooth_l1`` (default 1.0, PyTorch's).

    Inputs: ``views`` student features (N, D_s) or tokens (N, T, D_s); ``targets`` teacher
    features (N, D_t) / (N, T, D_t), D_t = D_s without an adapter; optional ``mask`` (N,) /
    (N, T) bool; ``weights`` (N,) or (N, T). Output: a 0-dim tensor.

    Example::

        loss = manyview.create("loss", "feature", student_dim=256, teacher_dim=512)
        value = loss(student_feat, targets=teacher_feat.detach())
    """

    student_dims = (2, 3)
    from_context: ClassVar[dict[str, str]] = {
        "student_dim": "student_dim",
        "teacher_dim": "teacher_dim",
    }

    def __init__(
        self,
        kind: str = "mse",
        *,
        student_dim: int | None = None,
        teacher_dim: int | None = None,
        adapter: bool | None = None,
        beta: float = 1.0,
    ) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(
                f"FeatureMatching: kind must be one of {', '.join(map(repr, KINDS))}, got {kind!r}"
            )
        for name, dim in (("student_dim", student_dim), ("teacher_dim", teacher_dim)):
            if dim is not None:
                check_int(dim, name, "FeatureMatching")
        if adapter and student_dim is None:
            raise ValueError("FeatureMatching: adapter=True needs student_dim (and teacher_dim)")
        if adapter and teacher_dim is None:
            teacher_dim = student_dim
        differ = student_dim is not None and teacher_dim is not None and student_dim != teacher_dim
        if adapter is False and differ:
            raise ValueError(
                f"FeatureMatching: student_dim {student_dim} != teacher_dim {teacher_dim} needs "
                "an adapter; drop adapter=False"
            )
        self.kind = kind
        self.beta = check_positive(beta, "beta", "FeatureMatching")
        self.student_dim = student_dim
        self.teacher_dim = teacher_dim
        self.adapter = nn.Linear(student_dim, teacher_dim) if (adapter or differ) else None
        self.same_shape = self.adapter is None

    def check_targets(self, targets: Any, student: Tensor) -> Tensor:
        t = check_targets(
            targets, self.loss_name, like=student, same_shape=self.same_shape, max_dim=3
        )
        if self.adapter is not None:
            who = self.loss_name
            if t.shape[:-1] != student.shape[:-1]:
                raise ValueError(
                    f"{who}: student {tuple(student.shape)} and teacher {tuple(t.shape)} must "
                    "agree in every dimension but the last (the feature size)"
                )
            if student.shape[-1] != self.student_dim:
                raise ValueError(
                    f"{who}: the adapter expects student features of size {self.student_dim}, "
                    f"got {student.shape[-1]}; set student_dim to match"
                )
            if t.shape[-1] != self.teacher_dim:
                raise ValueError(
                    f"{who}: the adapter maps to teacher features of size {self.teacher_dim}, "
                    f"got {t.shape[-1]}; set teacher_dim to match"
                )
        return t

    def adapt(self, student: Tensor) -> Tensor:
        """The student features through the adapter (identity without one), in their dtype."""
        if self.adapter is None:
            return student
        weight = self.adapter.weight.to(student.dtype)
        bias = self.adapter.bias.to(student.dtype)
        return F.linear(student, weight, bias)

    def per_item(self, student: Tensor, targets: Tensor, mask: Tensor | None = None) -> Tensor:
        """Unreduced distance per row ``(N,)`` or token ``(N, T)``; 0 where ``mask`` is False."""
        h = self.adapt(student)
        if self.kind == "mse":
            values = (h - targets).square().mean(dim=-1)
        elif self.kind == "cosine":
            values = 1.0 - F.cosine_similarity(h, targets, dim=-1, eps=1e-8)
        else:
            values = F.smooth_l1_loss(h, targets, reduction="none", beta=self.beta).mean(dim=-1)
        values = zero_masked(values, mask, self.loss_name)
        return values

    def _example_shapes(
        self, n: int, m: int | None, d: int
    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Student and teacher features ``(n, d)`` (tokens ``(n, m, d)`` when ``m`` is given);
        with an adapter the sizes are ``student_dim`` and ``teacher_dim``."""
        ds, dt = (d, d) if self.adapter is None else (self.student_dim, self.teacher_dim)
        lead = (n,) if m is None else (n, m)
        return (*lead, ds), (*lead, dt)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, beta={self.beta}"
