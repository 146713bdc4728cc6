"""Relational knowledge distillation (Park, Kim, Lu, Cho, CVPR 2019, "Relational Knowledge
Distillation"; defaults from ``HobbitLong/RepDistiller``, ``distiller_zoo/RKD.py``)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from manyview.distill.base import DistillationLoss, check_targets
from manyview.options import check_non_negative


def _distances_and_angles(x: Tensor) -> tuple[Tensor, Tensor]:
    """Normalised pairwise distances ``(N, N)`` and angles ``(N, N, N)`` of rows ``x`` (N, D).

    ``dist[i, j] = ||x_i - x_j|| / mu`` with mu the mean over i != j (0 on the diagonal);
    ``angle[j, i, k] = <e(x_i - x_j), e(x_k - x_j)>`` with ``e`` the unit vector, 0 when
    either difference is 0 (a degenerate triplet)."""
    diff = x.unsqueeze(0) - x.unsqueeze(1)  # diff[j, i] = x_i - x_j
    norm = diff.square().sum(dim=-1)
    nonzero = norm > 0
    tiny = torch.finfo(x.dtype).tiny
    norm = torch.where(nonzero, norm.clamp_min(tiny).sqrt(), norm.new_zeros(()))
    n = x.shape[0]
    off = ~torch.eye(n, dtype=torch.bool, device=x.device)
    mu = norm[off].mean().clamp_min(tiny)
    unit = diff / torch.where(nonzero, norm, norm.new_ones(())).unsqueeze(-1)
    angles = torch.bmm(unit, unit.transpose(1, 2))
    return norm / mu, angles


class RKD(DistillationLoss):
    r"""Relational KD: match the batch's distance structure and angle structure.

    For the rows :math:`t_i` (teacher) and :math:`s_i` (student) of a batch of N, with
    :math:`\psi_D(x_i,x_j)=\|x_i-x_j\|/\mu` (μ the mean distance over pairs i ≠ j,
    computed separately for teacher and student) and
    :math:`\psi_A(x_i,x_j,x_k)=\langle e^{ij}, e^{kj}\rangle`,
    :math:`e^{ij}=(x_i-x_j)/\|x_i-x_j\|`,

    .. math:: \mathcal{L} = w_d\,\frac{1}{N^2}\sum_{i,j}\ell_1\big(\psi_D(s_i,s_j)-\psi_D(t_i,t_j)\big)
              + w_a\,\frac{1}{N^3}\sum_{i,j,k}\ell_1\big(\psi_A(s_i,s_j,s_k)-\psi_A(t_i,t_j,t_k)\big),

    :math:`\ell_1` the smooth-L1 (Huber) loss with threshold 1. The means run over all
    :math:`N^2` pairs and :math:`N^3` triplets, as the official code and RepDistiller
    average them: the i = j pairs and the degenerate triplets are 0 for both networks and
    only dilute the means, so the weights keep their published meaning. Both terms are
    invariant to a global scale, rotation and translation of either network's features. The
    teacher's terms are constants.

    Duplicated rows (a zero difference :math:`x_i - x_j`) differ from the official code
    (``lenscloth/RKD``, ``metric/loss.py``): there ``F.normalize`` divides the zero vector by
    its ``eps`` = 1e-12, and the student's gradient explodes (of the order of 1e10–1e11).
    Here the unit vector of a zero difference is 0 (the triplet's angle is 0, on both
    sides when both duplicate) and the distance's square root is never differentiated at
    0, so values and gradients stay finite and of the usual size.

    Args:
        distance_weight: w_d (default 25, RepDistiller's ``w_d``).
        angle_weight: w_a (default 50, RepDistiller's ``w_a``).

    Inputs: ``views`` student features (N, D_s) (or (N, ...) — flattened per row, like
    RepDistiller's penultimate features); ``targets`` teacher features (N, D_t), any D_t, the
    same N ≥ 2. Output: a 0-dim tensor.

    Example::

        loss = manyview.create("loss", "rkd")
        value = loss(student_feat, targets=teacher_feat.detach())
    """

    student_dims = (2, 3, 4)
    same_shape = False

    def __init__(self, distance_weight: float = 25.0, angle_weight: float = 50.0) -> None:
        super().__init__()
        self.distance_weight = check_non_negative(distance_weight, "distance_weight", "RKD")
        self.angle_weight = check_non_negative(angle_weight, "angle_weight", "RKD")

    def check_targets(self, targets: Any, student: Tensor) -> Tensor:
        t = check_targets(targets, self.loss_name, like=student, same_shape=False, max_dim=4)
        if t.dim() < 2:
            raise ValueError(
                f"{self.loss_name}: teacher features must be (N, D), got {tuple(t.shape)}"
            )
        if student.shape[0] < 2:
            raise ValueError(
                f"{self.loss_name} needs a batch of at least 2 (relations between samples), "
                f"got N = {student.shape[0]}"
            )
        return t

    def compute(
        self, student: Tensor, *, targets: Tensor, labels: Tensor | None = None, **_: Any
    ) -> Tensor:
        s_dist, s_angle = _distances_and_angles(student.flatten(1))
        with torch.no_grad():
            t_dist, t_angle = _distances_and_angles(targets.flatten(1))
        loss = student.new_zeros(())
        if self.distance_weight:
            loss = loss + self.distance_weight * F.smooth_l1_loss(s_dist, t_dist, beta=1.0)
        if self.angle_weight:
            loss = loss + self.angle_weight * F.smooth_l1_loss(s_angle, t_angle, beta=1.0)
        return loss

    def _example_shapes(
        self, n: int, m: int | None, d: int
    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Student features ``(n, d)`` and teacher features ``(n, 2d)`` (another width)."""
        return (n, d), (n, 2 * d)

    def extra_repr(self) -> str:
        return f"distance_weight={self.distance_weight}, angle_weight={self.angle_weight}"
