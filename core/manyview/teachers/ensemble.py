"""Several teachers as one, with UniSD's agreement weighting (Jin et al. 2026, "UniSD")."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from manyview.teachers.base import Teacher
from manyview.teachers.frozen import FrozenTeacher


def agreement_weights(
    scores: Tensor, *, gamma: float = 1.0, level: str = "item", mask: Tensor | None = None
) -> Tensor:
    r"""UniSD's agreement weights from per-teacher scores.

    Args:
        scores: (K, N) or (K, N, T): one score per teacher and item (or token), e.g. the
            log-probability each teacher gives the selected token.
        gamma: γ, how strongly disagreement down-weights (UniSD default 1).
        level: ``"item"`` — per item/token: :math:`d = \mathrm{Var}_k` (unbiased),
            :math:`\tilde d = \min(d / \max(q_{0.95}(d), 10^{-6}), 10)`,
            :math:`w = \max(0.01, 1/(1 + \gamma\tilde d))` (the quantile over the valid
            items; when 95 % of them agree exactly it is 0, and every disagreeing item gets
            the capped :math:`1/(1+10\gamma)`, as in UniSD's code);
            ``"sequence"`` — per sequence (scores (K, N, T)): :math:`d = \mathrm{Var}_k` of the
            mean over tokens, :math:`w = \max(10^{-6}, e^{-\gamma d})`, broadcast over tokens.
        mask: (N, T) valid tokens; the quantile and the sequence means use only these.

    Returns:
        weights of shape ``scores.shape[1:]``, equal to 1 where all teachers agree.
    """
    if scores.dim() not in (2, 3) or scores.shape[0] < 2:
        raise ValueError(
            f"agreement weights need (K >= 2, N[, T]) scores, got {tuple(scores.shape)}"
        )
    if level == "sequence":
        if scores.dim() != 3:
            raise ValueError("sequence-level agreement needs token scores (K, N, T)")
        valid = torch.ones_like(scores[0], dtype=torch.bool) if mask is None else mask.bool()
        means = (scores * valid).sum(-1) / valid.sum(-1).clamp(min=1)
        d = means.var(dim=0, unbiased=False)
        return (-gamma * d).exp().clamp(min=1e-6)[:, None].expand_as(scores[0])
    if level != "item":
        raise ValueError(f"level must be 'item' or 'sequence', got {level!r}")
    # UniSD's token level: the unbiased variance over the teachers (its sequence level, above,
    # uses the biased one), normalised by the 0.95-quantile of the valid values floored at
    # 1e-6 -- so where at least 95 % of them agree (quantile 0) every disagreeing token is
    # capped at 10 and gets 1/(1 + 10γ), and only exact agreement keeps weight 1.
    d = scores.var(dim=0, unbiased=True)
    valid = torch.ones_like(d, dtype=torch.bool) if mask is None else mask.bool()
    if not valid.any():
        return torch.ones_like(d)
    flat = d[valid].to(torch.float64 if d.dtype == torch.float64 else torch.float32)
    scale = torch.quantile(flat, 0.95).clamp(min=1e-6).to(d.dtype)
    d_norm = (d / scale).clamp(max=10.0)
    return (1.0 / (1.0 + gamma * d_norm)).clamp(min=0.01)


def _member(teacher: Any, i: int, context: Mapping[str, Any] | None) -> nn.Module:
    """One ensemble member: a module as it is, or a ``{"name", "options"}`` table built."""
    if isinstance(teacher, nn.Module):
        return teacher
    if isinstance(teacher, Mapping) and isinstance(teacher.get("name"), str):
        from manyview.context import build

        unknown = sorted(set(teacher) - {"name", "options"})
        if unknown:
            raise ValueError(
                f"ensemble: teachers[{i}] has unknown keys {unknown} (use name, options)"
            )
        return build("teacher", teacher["name"], teacher.get("options") or {}, context)
    raise ValueError(
        f"ensemble: teachers[{i}] must be a module or a table {{name = ..., options = {{...}}}}, "
        f"got {type(teacher).__name__}"
    )


def _default_score(output: Tensor) -> Tensor:
    """Per-item score of a teacher's output: its mean over the last dimension."""
    return output.mean(dim=-1) if output.dim() > 1 else output


class EnsembleTeacher(Teacher):
    r"""Several teachers combined into one target, with per-item agreement weights.

    The target is the (weighted) mean of the teachers' outputs. With
    ``weighting="agreement"`` the ensemble also computes UniSD's agreement weights
    (:func:`agreement_weights`) from a per-item score of each teacher's output — by default
    the output's mean over its last dimension; pass ``score`` for another (UniSD uses the
    log-probability of the selected token). Distillation losses take them as ``weights=``:
    items the teachers disagree on count less. :meth:`forward_with_weights` returns both;
    the last weights are also kept in :attr:`last_weights`.

    Args:
        teachers: teachers, frozen modules (wrapped in ``frozen``), or teacher tables
            ``{"name": ..., "options": {...}}`` built like a ``[teacher]`` table (with the
            recipe's context), so an ensemble can come from TOML: ``options = { teachers =
            [{ name = "frozen", options = { run = "runs/a" } }, { name = "frozen", options =
            { run = "runs/b" } }] }``.
        weighting: ``"agreement"`` (default) or ``"mean"`` (all weights 1).
        gamma: γ of the agreement weights (UniSD: 1).
        level: ``"item"`` or ``"sequence"`` (see :func:`agreement_weights`).
        teacher_weights: fixed mixing weights of the teachers' outputs (default: equal).
        score: ``output -> (N[, T]) score`` used for the agreement.
        context: what a recipe knows (:mod:`manyview.context`), for the teacher tables.

    Every teacher gets the whole input (each reads its own keys).
    """

    from_context: ClassVar[dict[str, str]] = {"context": "context"}

    def __init__(
        self,
        teachers: Sequence[nn.Module],
        *,
        weighting: str = "agreement",
        gamma: float = 1.0,
        level: str = "item",
        teacher_weights: Sequence[float] | None = None,
        score: Callable[[Tensor], Tensor] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(teachers, Sequence) or isinstance(teachers, str) or len(teachers) < 2:
            raise ValueError("ensemble: pass a list of at least two teachers")
        teachers = [_member(t, i, context) for i, t in enumerate(teachers)]
        if weighting not in ("agreement", "mean"):
            raise ValueError(
                f"ensemble: weighting must be 'agreement' or 'mean', got {weighting!r}"
            )
        if level not in ("item", "sequence"):
            raise ValueError(f"ensemble: level must be 'item' or 'sequence', got {level!r}")
        wrapped = [t if isinstance(t, Teacher) else FrozenTeacher(t) for t in teachers]
        self.teachers = nn.ModuleList(wrapped)
        if teacher_weights is not None:
            if (
                len(teacher_weights) != len(wrapped)
                or min(teacher_weights) < 0
                or sum(teacher_weights) <= 0
            ):
                raise ValueError(
                    "ensemble: teacher_weights must be one non-negative number per teacher"
                )
            mix = torch.tensor([float(w) for w in teacher_weights])
        else:
            mix = torch.ones(len(wrapped))
        self.register_buffer("mix", mix / mix.sum())
        self.weighting, self.gamma, self.level = weighting, float(gamma), level
        self.score = score or _default_score
        self.last_weights: Tensor | None = None

    def forward_with_weights(
        self, batch: Any, *, mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """(targets, weights): the mixed outputs and the per-item agreement weights."""
        with torch.no_grad():
            outputs = [t(batch) for t in self.teachers]
            shapes = {tuple(o.shape) for o in outputs}
            if len(shapes) != 1:
                raise ValueError(
                    f"ensemble: the teachers' outputs differ in shape: {sorted(shapes)}"
                )
            stacked = torch.stack(outputs)  # (K, N, ...)
            mix = self.mix.to(stacked.dtype).view(-1, *([1] * (stacked.dim() - 1)))
            targets = (mix * stacked).sum(0)
            if self.weighting == "mean":
                weights = torch.ones(
                    self.score(outputs[0]).shape, dtype=targets.dtype, device=targets.device
                )
            else:
                scores = torch.stack([self.score(o) for o in outputs])
                weights = agreement_weights(scores, gamma=self.gamma, level=self.level, mask=mask)
        self.last_weights = weights
        return targets, weights

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(k for t in self.teachers for k in getattr(t, "keys", ())))

    def targets(self, batch: Any, **kwargs: Any) -> Tensor:
        return self.forward_with_weights(batch, **kwargs)[0]

    def update(self, student: nn.Module | None = None, step: int | None = None) -> None:
        for teacher in self.teachers:
            teacher.update(student, step)

    def example_inputs(self, n: int = 4, *, generator: torch.Generator | None = None) -> Any:
        return self.teachers[0].example_inputs(n, generator=generator)
