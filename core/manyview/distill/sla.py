r"""Self-supervised label augmentation, SLA and SLA+SD (Lee, Hwang, Shin, "Self-supervised
Label Augmentation via Input Transformations", ICML 2020).

One classifier over the joint label space (class i, transformation j) ↦ iM + j, trained on
the M transformed copies of each input (manyview-vision's ``rotation`` view makes them; the
joint labels are :func:`joint_labels`). At test time :func:`single` reads slot j = 0 of the
untransformed copy and :func:`aggregate` averages slot j of copy j. SLA+SD distils the aggregate into an extra N-way head on the
untransformed input, so one forward pass recovers the aggregated accuracy. Follows
``create_sla_trainer`` / ``create_sla_sd_trainer`` of the official ``hankook/SLA``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from manyview.distill.base import DistillationLoss, check_tensor
from manyview.losses.base import check_labels, check_temperature
from manyview.options import check_int

__all__ = ["SLALoss", "aggregate", "decode_joint_labels", "joint_labels", "single"]


def joint_labels(labels: Tensor, m: int) -> Tensor:
    """Joint labels ``y * m + j`` (N·m,) for the m transformed copies of each sample, in the
    row order of the ``rotation`` view (sample i's copies at rows i·m .. i·m + m - 1)."""
    check_int(m, "m", "joint_labels")
    if not isinstance(labels, Tensor) or labels.dim() != 1 or labels.is_floating_point():
        raise ValueError("joint_labels: labels must be an integer tensor of shape (N,)")
    j = torch.arange(m, device=labels.device, dtype=labels.dtype)
    return (labels[:, None] * m + j[None, :]).reshape(-1)


def decode_joint_labels(joint: Tensor, m: int) -> tuple[Tensor, Tensor]:
    """Inverse of :func:`joint_labels` element-wise: ``(joint // m, joint % m)`` = (y, j)."""
    check_int(m, "m", "decode_joint_labels")
    return torch.div(joint, m, rounding_mode="floor"), torch.remainder(joint, m)


def _split(joint_logits: Tensor, m: int, who: str) -> tuple[int, int]:
    check_int(m, "the number of transformations", who)
    if not isinstance(joint_logits, Tensor) or joint_logits.dim() != 2:
        raise ValueError(
            f"{who}: joint logits must be a tensor (N·M, C·M), got "
            f"{tuple(joint_logits.shape) if isinstance(joint_logits, Tensor) else type(joint_logits).__name__}"
        )
    rows, cols = joint_logits.shape
    if rows % m or cols % m or rows == 0 or cols == 0:
        raise ValueError(
            f"{who}: joint logits {tuple(joint_logits.shape)} must be (N·M, C·M) with M = {m}: "
            "both sizes must be positive multiples of M"
        )
    return rows // m, cols // m


def aggregate(joint_logits: Tensor, num_transforms: int) -> Tensor:
    r"""SLA+AG class logits :math:`z^{agg}_{i,c} = \frac1M\sum_j z_{iM+j,\,cM+j}` (N, C): slot j
    of the copy transformed by :math:`t_j`, averaged over j (rows contiguous per sample)."""
    n, c = _split(joint_logits, num_transforms, "aggregate")
    m = num_transforms
    z = joint_logits.reshape(n, m, c, m)  # [sample, copy j, class, slot k]
    return torch.diagonal(z, dim1=1, dim2=3).mean(dim=-1)


def single(joint_logits: Tensor, m: int) -> Tensor:
    """SLA+SI class logits (N, C): slot j = 0 of copy 0 (the untransformed input)."""
    n, c = _split(joint_logits, m, "single")
    return joint_logits.reshape(n, m, c, m)[:, 0, :, 0]


class SLALoss(DistillationLoss):
    r"""SLA: cross-entropy over joint labels; SLA+SD adds a self-distilled N-way head.

    .. math:: L = \frac{1}{NM}\sum_{i,j}\mathrm{CE}\big(z(t_j(x_i)),\ y_iM + j\big)
              \;\Big[+\ \mathrm{CE}(v(x), y) + T^2\,\mathrm{KL}\big(\sigma(\mathrm{sg}(z^{agg}(x))/T)
              \,\big\|\,\sigma(v(x)/T)\big)\Big]

    The bracket is added when ``head_logits`` :math:`v(x)` is given; the KL is averaged over
    the batch (``reduction="batchmean"``, as the official code) and its target, the
    aggregate :math:`z^{agg}` (see :func:`aggregate`), is detached: the joint head is its own
    teacher and gets no gradient from the KL. No ``targets`` are taken.

    Args:
        num_transforms: M, copies per sample (rotation: 4).
        temperature: T of the self-distillation term (SLA: 1).
        large_loss: multiply the joint CE by M (official ``--with-large-loss``, used for
            ImageNet / iNaturalist; default ``False``).
        aggregate_ce: also add CE(z^agg, y) (default ``False``). The official code had it as
            ``with_training_agg`` only in its first commits (``2df87ac``, ``5cb9b0d``); the
            released code (from ``9ab88fe``) has no such term, as the default here.

    Inputs: ``views`` — joint logits (N·M, C·M) on the transformed batch, rows contiguous per
    sample (row iM + j is copy j of sample i, as manyview-vision's ``rotation`` view makes
    them); ``labels`` (N,) class ids; optional ``head_logits`` (N, C) of the extra head
    on the untransformed inputs (or (N·M, C) on the whole transformed batch, of which rows
    iM — copy 0 — are used, as the official code does). Output: 0-dim.

    Example::

        rot = manyview.create("view", "rotation")  # manyview-vision
        loss = manyview.create("loss", "sla", num_transforms=4)
        feats = backbone(rot(x))                       # (4N, F)
        value = loss(joint_head(feats), labels=y, head_logits=sd_head(feats))
    """

    needs = ("labels",)
    student_dims = (2,)

    def __init__(
        self,
        num_transforms: int = 4,
        *,
        temperature: float = 1.0,
        large_loss: bool = False,
        aggregate_ce: bool = False,
    ) -> None:
        super().__init__()
        who = self.loss_name
        self.num_transforms = check_int(num_transforms, "num_transforms", who)
        self.temperature = check_temperature(temperature, "temperature", who)
        self.large_loss = bool(large_loss)
        self.aggregate_ce = bool(aggregate_ce)

    def compute(
        self,
        student: Tensor,
        *,
        targets: Any = None,
        labels: Any = None,
        head_logits: Tensor | None = None,
    ) -> Tensor:
        who = self.loss_name
        if targets is not None:
            raise ValueError(
                f"{who} takes no targets=: its teacher is the detached aggregate of the joint head"
            )
        m = self.num_transforms
        n, c = _split(student, m, who)
        if labels is None:
            raise ValueError(f"{who} needs `labels=` (class ids of shape ({n},))")
        labels = check_labels(labels, n, who=who, device=student.device).long()
        if labels.min() < 0 or labels.max() >= c:
            raise ValueError(
                f"{who}: labels must be class ids in [0, {c}) (C = {c} from the joint logits' "
                f"{c * m} columns / M = {m}), got values in [{int(labels.min())}, "
                f"{int(labels.max())}]"
            )
        loss = F.cross_entropy(student, joint_labels(labels, m))
        if self.large_loss:
            loss = loss * m
        agg = aggregate(student, m)
        if self.aggregate_ce:
            loss = loss + F.cross_entropy(agg, labels)
        if head_logits is not None:
            head = self._head(head_logits, n, c, student)
            loss = loss + F.cross_entropy(head, labels)
            t = self.temperature
            teacher_logp = F.log_softmax(agg.detach() / t, dim=-1)
            student_logp = F.log_softmax(head / t, dim=-1)
            kl = (teacher_logp.exp() * (teacher_logp - student_logp)).sum(dim=-1).mean()
            loss = loss + t * t * kl
        return loss

    def _head(self, head_logits: Any, n: int, c: int, student: Tensor) -> Tensor:
        who = self.loss_name
        head = check_tensor(head_logits, "head_logits", who, min_dim=2, max_dim=2)
        m = self.num_transforms
        if head.shape == (n * m, c) and m > 1:
            head = head[::m]  # copy 0 of each sample: the untransformed input
        if head.shape != (n, c):
            raise ValueError(
                f"{who}: head_logits must be (N, C) = ({n}, {c}) or (N·M, C) = ({n * m}, {c}), "
                f"got {tuple(head.shape)}"
            )
        return head.to(student.dtype)

    def example_inputs(
        self,
        n: int = 8,
        m: int | None = None,
        d: int = 16,
        *,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> tuple[Tensor, dict[str, Any]]:
        """Joint logits (n·M, d·M), labels in [0, d) and head logits (n, d); ``m`` is ignored
        (M = ``num_transforms``)."""
        k = self.num_transforms
        joint = torch.randn(n * k, d * k, generator=generator, dtype=dtype)
        labels = torch.randint(0, d, (n,), generator=generator)
        head = torch.randn(n, d, generator=generator, dtype=dtype)
        return joint, {"labels": labels, "head_logits": head}

    def extra_repr(self) -> str:
        flags = "".join(f", {k}=True" for k in ("large_loss", "aggregate_ce") if getattr(self, k))
        return f"num_transforms={self.num_transforms}, temperature={self.temperature}{flags}"
