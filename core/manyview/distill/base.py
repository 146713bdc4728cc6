"""The contract of distillation losses: a student output against teacher targets.

A distillation loss is an ``nn.Module`` whose forward takes the student's output as its
first argument (``views``: logits ``(N, C)``, features ``(N, D)`` or tokens ``(N, T, D)``),
the teacher's output as keyword-only ``targets`` (same shape unless the loss says
otherwise), and optional ``labels`` / ``mask`` / ``weights``. Targets are constants: a
target tensor that requires grad is refused, so no gradient can reach a teacher.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from manyview.distill.reduction import masked_mean
from manyview.losses.base import NonFiniteInputError, check_device, compute_dtype
from manyview.losses.keywords import check_call_keywords


def check_tensor(x: Any, name: str, who: str, *, min_dim: int = 1, max_dim: int = 3) -> Tensor:
    """A finite floating tensor with ``min_dim <= x.dim() <= max_dim``, or a ValueError."""
    if not isinstance(x, Tensor):
        raise ValueError(f"{who}: {name} must be a tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"{who}: {name} must be floating point, got {x.dtype}")
    if not min_dim <= x.dim() <= max_dim:
        raise ValueError(
            f"{who}: {name} must have {min_dim} to {max_dim} dimensions, got shape {tuple(x.shape)}"
        )
    if x.numel() == 0:
        raise ValueError(f"{who}: {name} is empty (shape {tuple(x.shape)})")
    check_device(x, who, name)
    if not torch.isfinite(x).all():
        raise NonFiniteInputError(f"{who}: {name} contains NaN or inf")
    return x


def check_targets(
    targets: Any,
    who: str,
    *,
    like: Tensor | None = None,
    same_shape: bool = True,
    min_dim: int = 1,
    max_dim: int = 3,
) -> Tensor:
    """Teacher targets: a finite tensor that carries no gradient, matching ``like``."""
    if targets is None:
        raise ValueError(f"{who} needs the teacher's output as `targets=`")
    t = check_tensor(targets, "targets", who, min_dim=min_dim, max_dim=max_dim)
    if t.requires_grad:
        raise ValueError(
            f"{who}: targets require grad, so the loss would train the teacher; compute them "
            "under torch.no_grad() (teachers do) or pass targets.detach()"
        )
    if like is not None:
        if same_shape and t.shape != like.shape:
            raise ValueError(
                f"{who}: student output {tuple(like.shape)} and teacher targets "
                f"{tuple(t.shape)} must have the same shape"
            )
        if t.shape[0] != like.shape[0]:
            raise ValueError(f"{who}: student batch {like.shape[0]} != teacher batch {t.shape[0]}")
    return t


class DistillationLoss(nn.Module):
    """Base class of student-vs-teacher losses.

    Subclasses implement :meth:`compute` on a checked, up-cast student tensor and targets.
    Class attributes declare the contract (``docs/architecture.md``, "Loss inputs"):
    ``takes = "student"`` (a student output and teacher targets, not M views), ``needs``
    (required keyword inputs, ``("targets",)`` by default), ``inputs`` (optional ones it
    uses when given), ``from_context`` (constructor arguments a recipe fills in, see
    :mod:`manyview.context`) and ``student_dims`` (allowed ranks of the student output).
    """

    takes: ClassVar[str] = "student"
    needs: tuple[str, ...] = ("targets",)
    inputs: ClassVar[tuple[str, ...]] = ()
    from_context: ClassVar[dict[str, str]] = {}
    student_dims: tuple[int, ...] = (2, 3)
    same_shape = True

    @property
    def loss_name(self) -> str:
        return type(self).__name__

    def forward(
        self, views: Tensor, *, targets: Any = None, labels: Tensor | None = None, **kwargs: Any
    ) -> Tensor:
        who = self.loss_name
        check_call_keywords(self, {"targets": targets, "labels": labels, **kwargs}, who)
        lo, hi = min(self.student_dims), max(self.student_dims)
        student = check_tensor(views, "the student output", who, min_dim=lo, max_dim=hi)
        if student.dim() not in self.student_dims:
            raise ValueError(
                f"{who}: the student output must have {' or '.join(map(str, self.student_dims))} "
                f"dimensions, got shape {tuple(student.shape)}"
            )
        if "targets" in self.needs:
            targets = self.check_targets(targets, student)
        with torch.autocast(student.device.type, enabled=False):
            dtype = compute_dtype(student)
            student = student.to(dtype)
            if isinstance(targets, Tensor):
                targets = targets.to(dtype)
            return self.compute(student, targets=targets, labels=labels, **kwargs)

    def check_targets(self, targets: Any, student: Tensor) -> Any:
        return check_targets(
            targets,
            self.loss_name,
            like=student,
            same_shape=self.same_shape,
            min_dim=1,
            max_dim=max(self.student_dims),
        )

    def compute(
        self, student: Tensor, *, targets: Any, labels: Tensor | None, **kwargs: Any
    ) -> Tensor:
        raise NotImplementedError

    def example_inputs(
        self,
        n: int = 8,
        m: int | None = None,
        d: int = 16,
        *,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> tuple[Tensor, dict[str, Any]]:
        """Student output and ``{"targets": teacher output, ...}``: :meth:`_example_values`
        (standard normal by default) of the shapes :meth:`_example_shapes` gives (``(n, d)``
        both by default), student first, then the loss's other inputs from
        :meth:`_example_extras` (none by default)."""
        student_shape, teacher_shape = self._example_shapes(n, m, d)
        student = self._example_values(student_shape, generator, dtype)
        teacher = self._example_values(teacher_shape, generator, dtype)
        return student, {"targets": teacher, **self._example_extras(student, generator)}

    def _example_values(
        self, shape: tuple[int, ...], generator: torch.Generator | None, dtype: torch.dtype
    ) -> Tensor:
        """Example outputs of ``shape``: standard normal (logits, features, scores)."""
        return torch.randn(shape, generator=generator, dtype=dtype)

    def _example_shapes(
        self, n: int, m: int | None, d: int
    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The shapes of the example student output and teacher targets."""
        return (n, d), (n, d)

    def _example_extras(self, student: Tensor, generator: torch.Generator | None) -> dict[str, Any]:
        """The example inputs besides the student output and the targets, drawn after them
        (``student`` is the example student output)."""
        return {}


class PerItemLoss(DistillationLoss):
    """A distillation loss that is the masked, weighted mean of per-row or per-token values.

    Subclasses implement :meth:`per_item` (the unreduced values, 0 where ``mask`` is False),
    which also gets the keyword inputs named in ``_item_inputs``; :meth:`reduce` is
    :func:`~manyview.distill.reduction.masked_mean`. ``divergence_clip`` caps the values
    between the two.
    """

    _item_inputs: tuple[str, ...] = ()

    def per_item(self, student: Tensor, targets: Tensor, mask: Tensor | None = None) -> Tensor:
        """The unreduced values per row ``(N,)`` or token ``(N, T)``."""
        raise NotImplementedError

    def reduce(self, values: Tensor, mask: Any = None, weights: Any = None) -> Tensor:
        """Masked, weighted mean of per-item values (:func:`~manyview.distill.reduction.masked_mean`)."""
        return masked_mean(values, mask, weights, who=self.loss_name)

    def compute(
        self,
        student: Tensor,
        *,
        targets: Tensor,
        labels: Tensor | None = None,
        mask: Any = None,
        weights: Any = None,
        **kwargs: Any,
    ) -> Tensor:
        inputs = {k: kwargs[k] for k in self._item_inputs if k in kwargs}
        return self.reduce(self.per_item(student, targets, mask, **inputs), mask, weights)


def as_target_list(targets: Any, who: str) -> list[Tensor]:
    """One tensor or a sequence of tensors (several teachers) as a list."""
    if isinstance(targets, Tensor):
        return [targets]
    if isinstance(targets, Sequence) and targets and all(isinstance(t, Tensor) for t in targets):
        return list(targets)
    raise ValueError(f"{who}: targets must be a tensor or a list of tensors (one per teacher)")
