"""Contrastive representation distillation (Tian, Krishnan, Isola, ICLR 2020, "Contrastive
Representation Distillation"; official code ``HobbitLong/RepDistiller``, ``crd/criterion.py``
and ``crd/memory.py``)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from manyview.distill.base import DistillationLoss, check_targets
from manyview.losses.base import check_temperature
from manyview.options import check_allocation, check_ints


class CRD(DistillationLoss):
    r"""CRD as a symmetric InfoNCE between student and teacher embeddings, optional memory bank.

    Embeddings :math:`e_s=\mathrm{norm}(W_s h_s)`, :math:`e_t=\mathrm{norm}(W_t h_t)` (a
    learned linear head to ``embed_dim`` for each side whose dim is given, else the identity).
    With :math:`S_{ij}=e_{s,i}^\top e_{t,j}/\tau` over the batch, sample i's own teacher
    embedding as its positive and a bank :math:`\mathcal{B}_i` of K teacher-memory negatives
    (empty without ``num_samples``):

    .. math:: \ell^s_i = -S_{ii} + \log\Big(\sum_j e^{S_{ij}}
              + \sum_{k\in\mathcal{B}_i} e^{e_{s,i}^\top \mu_k/\tau}\Big),\qquad
              \ell^t_i = -S_{ii} + \log\sum_j e^{S_{ji}},

    :math:`\mathcal{L}=\frac{1}{2N}\sum_i(\ell^s_i+\ell^t_i)`.

    Memory bank (``num_samples`` set): a buffer μ of one unit teacher embedding per dataset
    sample, initialised with random unit vectors. After each training-mode call the rows of
    the batch's ``index`` are updated, :math:`\mu_i\leftarrow\mathrm{norm}(m\,\mu_i+(1-m)\,
    e_{t,i})` (momentum m = 0.5, as the official ``ContrastMemory``). The K negatives of
    sample i are drawn uniformly with replacement from the other M − 1 rows (or given as
    ``contrast_index``); they are read before the update. The bank is in ``state_dict``.

    Differences from the official code: it estimates the NCE bound
    :math:`-\log\frac{P^+}{P^++KP_n}-\sum\log\frac{KP_n}{P^-+KP_n}` with
    :math:`P=\exp(e^\top\mu/\tau)/Z`, a constant Z estimated on the first batch and
    :math:`P_n=1/M`, keeps two banks (teacher and student embeddings, each anchor contrasted
    with the other network's bank, the positive read from the bank too) and draws 16384
    negatives. Here the softmax (InfoNCE) form is used, the positives are the current
    embeddings, in-batch negatives are always used, and only the student anchor sees bank
    negatives, since the teacher's embeddings are the quantity worth remembering. It has no Z
    to estimate, and with the bank it is still a lower bound on the mutual information.

    Args:
        temperature: τ (default 0.07, CRD's ``nce_t``).
        student_dim: student feature size; gives the student a linear head to ``embed_dim``.
        teacher_dim: teacher feature size; gives the teacher a linear head (trained through
            this loss; the teacher's features get no gradient).
        embed_dim: size of the heads' output (default 128, CRD's ``feat_dim``).
        num_samples: dataset size M for the memory bank (default ``None``: no bank). The
            bank holds ``embed_dim``-sized teacher embeddings: without a teacher head the
            teacher features must have that size.
        num_negatives: bank negatives per sample (default 4096; capped at M − 1; the
            official code uses 16384).
        momentum: the bank's update momentum m (default 0.5, CRD's ``nce_m``).

    Inputs: ``views`` student features (N, D_s); ``targets`` teacher features (N, D_t)
    (D_s = D_t without heads); ``index`` (N,) dataset indices of the batch (required with a
    bank, distinct); optional ``contrast_index`` (N, K) bank rows to use as negatives. Output:
    a 0-dim tensor.

    Example::

        loss = manyview.create("loss", "crd", student_dim=256, teacher_dim=512,
                               num_samples=len(dataset))
        value = loss(f_s, targets=f_t.detach(), index=idx)
    """

    student_dims = (2,)
    inputs = ("index",)
    from_context: ClassVar[dict[str, str]] = {
        "student_dim": "student_dim",
        "teacher_dim": "teacher_dim",
    }
    same_shape = False

    def __init__(
        self,
        temperature: float = 0.07,
        *,
        student_dim: int | None = None,
        teacher_dim: int | None = None,
        embed_dim: int = 128,
        num_samples: int | None = None,
        num_negatives: int = 4096,
        momentum: float = 0.5,
    ) -> None:
        super().__init__()
        who = "CRD"
        self.temperature = check_temperature(temperature, "temperature", who)
        given = {
            "student_dim": student_dim,
            "teacher_dim": teacher_dim,
            "embed_dim": embed_dim,
            "num_samples": num_samples,
            "num_negatives": num_negatives,
        }
        check_ints(who, **{name: value for name, value in given.items() if value is not None})
        momentum = float(momentum)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"{who}: momentum must be in [0, 1), got {momentum}")
        if num_samples is not None and num_samples < 2:
            raise ValueError(f"{who}: num_samples must be at least 2 for a memory bank")
        self.student_dim = student_dim
        self.teacher_dim = teacher_dim
        self.embed_dim = embed_dim
        self.student_head = nn.Linear(student_dim, embed_dim) if student_dim else None
        self.teacher_head = nn.Linear(teacher_dim, embed_dim) if teacher_dim else None
        self.num_samples = num_samples
        self.momentum = momentum
        self.num_negatives = 0 if num_samples is None else min(num_negatives, num_samples - 1)
        self.memory: Tensor | None
        if num_samples is not None:
            check_allocation(
                num_samples * embed_dim, 4, f"a memory bank of num_samples={num_samples}", who
            )
            self.register_buffer("memory", F.normalize(torch.randn(num_samples, embed_dim), dim=1))
        else:
            self.memory = None

    def check_targets(self, targets: Any, student: Tensor) -> Tensor:
        who = self.loss_name
        t = check_targets(targets, who, like=student, same_shape=False, min_dim=2, max_dim=2)
        ds = self.embed_dim if self.student_head is not None else student.shape[1]
        dt = self.embed_dim if self.teacher_head is not None else t.shape[1]
        for name, head, dim, got in (
            ("student", self.student_head, self.student_dim, student.shape[1]),
            ("teacher", self.teacher_head, self.teacher_dim, t.shape[1]),
        ):
            if head is not None and got != dim:
                raise ValueError(
                    f"{who}: the {name} head expects features of size {dim}, got {got}; set "
                    f"{name}_dim to match"
                )
        if ds != dt:
            raise ValueError(
                f"{who}: student embeddings have size {ds} and teacher embeddings {dt}; pass "
                "student_dim and teacher_dim so both go through heads to embed_dim"
            )
        if self.memory is not None and dt != self.embed_dim:
            raise ValueError(
                f"{who}: teacher embeddings of size {dt} do not fit the memory bank's "
                f"{self.embed_dim}; pass teacher_dim (a head to embed_dim) or set embed_dim to "
                "the feature size"
            )
        return t

    @staticmethod
    def _head(x: Tensor, head: nn.Linear | None) -> Tensor:
        if head is not None:
            x = F.linear(x, head.weight.to(x.dtype), head.bias.to(x.dtype))
        return F.normalize(x, dim=1)

    def embed(self, student: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        """Unit student and teacher embeddings (N, embed_dim)."""
        return self._head(student, self.student_head), self._head(targets, self.teacher_head)

    def check_index(self, index: Any, n: int) -> Tensor:
        who = self.loss_name
        m = self.num_samples
        if index is None:
            raise ValueError(f"{who} with a memory bank needs the batch's dataset `index=` ({n},)")
        if not isinstance(index, Tensor) or tuple(index.shape) != (n,):
            got = tuple(index.shape) if isinstance(index, Tensor) else type(index).__name__
            raise ValueError(f"{who}: index must be a tensor of shape ({n},), got {got}")
        if index.is_floating_point() or index.is_complex() or index.dtype == torch.bool:
            raise ValueError(f"{who}: index must be an integer tensor, got {index.dtype}")
        if ((index < 0) | (index >= m)).any():
            raise ValueError(f"{who}: index values must be in [0, num_samples={m})")
        if index.unique().numel() != n:
            raise ValueError(
                f"{who}: index has repeated entries; the memory update needs one row per sample"
            )
        return index.long()

    def sample_negatives(self, index: Tensor) -> Tensor:
        """``(N, K)`` bank rows drawn uniformly with replacement, never the sample's own row."""
        k, m = self.num_negatives, self.num_samples
        draw = torch.randint(0, m - 1, (index.shape[0], k), device=index.device)
        return draw + (draw >= index.unsqueeze(1)).long()

    def _check_contrast_index(self, contrast_index: Any, index: Tensor) -> Tensor:
        who = self.loss_name
        if not isinstance(contrast_index, Tensor) or contrast_index.dim() != 2:
            raise ValueError(f"{who}: contrast_index must be an integer tensor (N, K)")
        if contrast_index.shape[0] != index.shape[0]:
            raise ValueError(
                f"{who}: contrast_index has {contrast_index.shape[0]} rows for a batch of "
                f"{index.shape[0]}"
            )
        if contrast_index.is_floating_point() or contrast_index.dtype == torch.bool:
            raise ValueError(f"{who}: contrast_index must be integers, got {contrast_index.dtype}")
        if ((contrast_index < 0) | (contrast_index >= self.num_samples)).any():
            raise ValueError(f"{who}: contrast_index values must be in [0, {self.num_samples})")
        return contrast_index.long().to(index.device)

    @torch.no_grad()
    def update_memory(self, index: Tensor, teacher_embeddings: Tensor) -> None:
        """:math:`\\mu_i \\leftarrow \\mathrm{norm}(m\\,\\mu_i + (1-m)\\,e_{t,i})` for the batch."""
        assert self.memory is not None
        rows = self.memory[index].to(teacher_embeddings.dtype)
        new = F.normalize(self.momentum * rows + (1 - self.momentum) * teacher_embeddings, dim=1)
        self.memory.index_copy_(0, index.to(self.memory.device), new.to(self.memory.dtype))

    def compute(
        self,
        student: Tensor,
        *,
        targets: Tensor,
        labels: Tensor | None = None,
        index: Any = None,
        contrast_index: Any = None,
        **_: Any,
    ) -> Tensor:
        n = student.shape[0]
        e_s, e_t = self.embed(student, targets)
        logits = e_s @ e_t.T / self.temperature  # (N, N): rows student anchors
        diag = torch.arange(n, device=student.device)
        pos = logits[diag, diag]
        teacher_anchored = torch.logsumexp(logits, dim=0) - pos
        row_logits = logits
        if self.memory is not None:
            index = self.check_index(index, n).to(student.device)
            if contrast_index is None:
                contrast_index = self.sample_negatives(index)
            else:
                contrast_index = self._check_contrast_index(contrast_index, index)
            bank = self.memory.to(student.dtype)[contrast_index.to(self.memory.device)]
            bank_logits = torch.einsum("nd,nkd->nk", e_s, bank.to(student.device))
            row_logits = torch.cat((logits, bank_logits / self.temperature), dim=1)
            if self.training:
                self.update_memory(index, e_t.detach())
        student_anchored = torch.logsumexp(row_logits, dim=1) - pos
        return 0.5 * (student_anchored.mean() + teacher_anchored.mean())

    def _example_shapes(
        self, n: int, m: int | None, d: int
    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Student and teacher features (``student_dim`` / ``teacher_dim`` when set, else
        ``embed_dim`` where a head or the bank needs it, else ``d``)."""
        bank = self.memory is not None
        ds = self.student_dim or (self.embed_dim if self.teacher_head is not None or bank else d)
        dt = self.teacher_dim or (self.embed_dim if self.student_head is not None or bank else d)
        return (n, ds), (n, dt)

    def _example_extras(self, student: Tensor, generator: torch.Generator | None) -> dict[str, Any]:
        """``index`` with a bank."""
        n = student.shape[0]
        if self.num_samples is None:
            return {}
        if n > self.num_samples:
            raise ValueError(f"CRD: a batch of {n} needs num_samples >= {n}")
        return {"index": torch.randperm(self.num_samples, generator=generator)[:n]}

    def extra_repr(self) -> str:
        parts = [f"temperature={self.temperature}", f"embed_dim={self.embed_dim}"]
        if self.num_samples is not None:
            parts += [
                f"num_samples={self.num_samples}",
                f"num_negatives={self.num_negatives}",
                f"momentum={self.momentum}",
            ]
        return ", ".join(parts)
