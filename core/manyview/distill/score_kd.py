"""Score distillation over each query's candidate list, one or several teachers: DiSCo
(Lupart, Aliannejadi, Kanoulas, SIGIR 2025, "DiSCo Meets LLMs: A Unified Approach for Sparse
Retrieval and Contextual Distillation in Conversational Search", arXiv 2410.14609; official
code ``SimonLupart/disco-conv-splade``, ``splade/hf/trainers.py``)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from manyview.distill.base import DistillationLoss, as_target_list
from manyview.distill.reduction import check_mask
from manyview.losses.base import check_temperature


class ScoreKD(DistillationLoss):
    r"""KL between the teacher's and the student's softmax over each query's candidates.

    For query q with valid candidates :math:`V_q`, student scores :math:`\sigma_q` and teacher
    scores :math:`t_q`,

    .. math:: \mathcal{L} = \frac1N\sum_q \mathrm{KL}\big(\mathrm{softmax}_{V_q}(t_q/\tau_t)
              \,\big\|\,\mathrm{softmax}_{V_q}(\sigma_q/\tau_s)\big),

    summed over the list and averaged over queries as in DiSCo's ``compute_loss`` (its
    ``kldiv`` term, weight 0.99 there; add the contrastive term separately).

    Several teachers: their scores are averaged per (query, candidate); NaN marks a candidate
    a teacher did not score, and such a candidate keeps the mean of the teachers that did
    (the union-of-runs combination of the DiSCo reproduction). Every valid candidate must be
    scored by at least one teacher. NaN is accepted in teacher scores for this purpose only.

    Args:
        student_temperature: τ_s (default 1, DiSCo's: raw scores).
        teacher_temperature: τ_t (default 1).

    Inputs: ``views`` student scores (N, L) (finite everywhere, padding included);
    ``targets`` teacher scores (N, L), or a list of them (one per teacher); optional ``mask``
    (N, L) bool of valid candidates (False for padding; every query needs one). Output: a
    0-dim tensor.

    Example::

        loss = manyview.create("loss", "score_kd")
        value = loss(student_scores, targets=[mistral_scores, llama_scores], mask=valid)
    """

    student_dims = (2,)

    def __init__(self, student_temperature: float = 1.0, teacher_temperature: float = 1.0) -> None:
        super().__init__()
        self.student_temperature = check_temperature(
            student_temperature, "student_temperature", "ScoreKD"
        )
        self.teacher_temperature = check_temperature(
            teacher_temperature, "teacher_temperature", "ScoreKD"
        )

    def check_targets(self, targets: Any, student: Tensor) -> Tensor:
        """One teacher's scores or the per-candidate mean of several (NaN where none scored)."""
        who = self.loss_name
        if targets is None:
            raise ValueError(
                f"{who} needs the teacher's scores as `targets=` ({tuple(student.shape)})"
            )
        scores = as_target_list(targets, who)
        for k, t in enumerate(scores):
            name = "targets" if len(scores) == 1 else f"targets[{k}]"
            if not t.is_floating_point():
                raise ValueError(f"{who}: {name} must be floating point, got {t.dtype}")
            if t.shape != student.shape:
                raise ValueError(
                    f"{who}: {name} {tuple(t.shape)} must have the student scores' shape "
                    f"{tuple(student.shape)}"
                )
            if t.requires_grad:
                raise ValueError(
                    f"{who}: {name} require grad, so the loss would train the teacher; compute "
                    "them under torch.no_grad() or pass .detach()"
                )
            if torch.isinf(t).any():
                raise ValueError(
                    f"{who}: {name} contain inf; mark unscored candidates with NaN instead"
                )
        if len(scores) == 1:
            return scores[0]
        dtype = torch.promote_types(torch.float32, scores[0].dtype)
        stacked = torch.stack([t.to(device=student.device, dtype=dtype) for t in scores])
        scored = ~torch.isnan(stacked)
        count = scored.sum(dim=0)
        total = torch.where(scored, stacked, stacked.new_zeros(())).sum(dim=0)
        nan = stacked.new_full((), float("nan"))
        return torch.where(count > 0, total / count.clamp_min(1), nan)

    def compute(
        self,
        student: Tensor,
        *,
        targets: Tensor,
        labels: Tensor | None = None,
        mask: Any = None,
        **_: Any,
    ) -> Tensor:
        who = self.loss_name
        mask = check_mask(mask, tuple(student.shape), who)
        valid = (
            torch.ones_like(student, dtype=torch.bool) if mask is None else mask.to(student.device)
        )
        if not valid.any(dim=1).all():
            bad = (~valid.any(dim=1)).nonzero().flatten()[:5].tolist()
            raise ValueError(f"{who}: queries {bad} have no valid candidate in mask")
        unscored = torch.isnan(targets) & valid
        if unscored.any():
            where = unscored.nonzero()[:5].tolist()
            raise ValueError(
                f"{who}: (query, candidate) {where} are valid but no teacher scored them (NaN); "
                "mask them out or give at least one teacher's score"
            )
        neg_inf = student.new_full((), float("-inf"))
        zero = student.new_zeros(())
        t = torch.where(valid, targets / self.teacher_temperature, neg_inf)
        s = torch.where(valid, student / self.student_temperature, neg_inf)
        log_t = torch.where(valid, torch.log_softmax(t, dim=1), zero)
        log_s = torch.where(valid, torch.log_softmax(s, dim=1), zero)
        per_query = (log_t.exp() * (log_t - log_s)).where(valid, zero).sum(dim=1)
        return per_query.mean()

    def _example_extras(self, student: Tensor, generator: torch.Generator | None) -> dict[str, Any]:
        """With student and teacher scores over ``d`` candidates per query, a mask that pads
        the last candidate of every other query."""
        mask = torch.ones(student.shape, dtype=torch.bool)
        if student.shape[1] > 1:
            mask[::2, -1] = False
        return {"mask": mask}

    def extra_repr(self) -> str:
        return (
            f"student_temperature={self.student_temperature}, "
            f"teacher_temperature={self.teacher_temperature}"
        )
