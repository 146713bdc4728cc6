"""The EMA teacher: an exponential moving average of the student (Tarvainen & Valpola 2017,
"Mean teachers"; BYOL, Grill et al. 2020; DINO, Caron et al. 2021; UniSD's EMA teacher)."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn

from manyview.options import check_int
from manyview.teachers.base import Teacher, call_module, read_key


class EMATeacher(Teacher):
    r"""A copy of the student whose weights follow an exponential moving average:

    .. math:: \theta_t \leftarrow m_k\,\theta_t + (1 - m_k)\,\theta_s

    over every floating-point parameter *and* buffer (batch-norm statistics included, frozen
    parts too); integer buffers are copied. The momentum is constant, or follows BYOL/DINO's
    cosine schedule :math:`m_k = m_{end} - (m_{end} - m_0)(\cos(\pi k / K) + 1)/2` from ``momentum``
    to ``final_momentum`` over ``total_steps``. With ``every = N`` the average is taken only every
    N updates (UniSD: N = 10, m = 0.9).

    Models with adapters (LoRA) must be averaged on their *effective* weights, not adapter
    by adapter (an average of B·A products is not the product of averages, and skipping the
    adapters leaves the teacher at its initial weights — UniSD's caveat): pass ``merge``, a
    function that returns a plain module with the adapters merged into the weights
    (``W + (alpha/r) B A``); the teacher then holds and averages that merged module.

    Args:
        student: the student module (copied; the copy never requires grad).
        momentum: m (DINO: 0.996; BYOL: 0.99; UniSD: 0.9).
        schedule: ``"constant"`` or ``"cosine"``.
        final_momentum: the cosine schedule's end value (1.0).
        total_steps: K, required by the cosine schedule.
        every: average every N calls of :meth:`update`.
        merge: ``student -> plain module`` for students with adapters.
        key: the entry of a mapping input the teacher reads (a recipe passes the student's
            modality); without it the input is passed to the module as it is.

    Calling the teacher runs the averaged module on the batch under ``torch.no_grad``. A
    recipe fills in ``student``, ``key`` and ``total_steps`` (the run's steps).
    """

    from_context: ClassVar[dict[str, str]] = {
        "student": "student",
        "key": "modality",
        "total_steps": "steps",
    }

    def __init__(
        self,
        student: nn.Module,
        *,
        momentum: float = 0.996,
        schedule: str = "constant",
        final_momentum: float = 1.0,
        total_steps: int | None = None,
        every: int = 1,
        merge: Callable[[nn.Module], nn.Module] | None = None,
        key: str | None = None,
    ) -> None:
        super().__init__()
        self.hold_student(student, "ema")
        if not 0.0 <= momentum <= 1.0 or not 0.0 <= final_momentum <= 1.0:
            raise ValueError(f"ema: momenta must lie in [0, 1], got {momentum}, {final_momentum}")
        if schedule not in ("constant", "cosine"):
            raise ValueError(f"ema: schedule must be 'constant' or 'cosine', got {schedule!r}")
        if schedule == "cosine" and (not isinstance(total_steps, int) or total_steps < 1):
            raise ValueError("ema: the cosine schedule needs total_steps (a positive int)")
        check_int(every, "every", "ema")
        self.momentum, self.final_momentum = float(momentum), float(final_momentum)
        self.schedule, self.total_steps, self.every = schedule, total_steps, every
        self.merge = merge
        self.key = key
        with torch.no_grad():
            self.module = copy.deepcopy(merge(student) if merge else student)
        self.module.requires_grad_(False)
        self.module.eval()
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))

    def momentum_at(self, step: int) -> float:
        """The momentum used at update ``step`` (0-based)."""
        if self.schedule == "constant":
            return self.momentum
        progress = min(max(step, 0), self.total_steps) / self.total_steps
        cos = (math.cos(math.pi * progress) + 1) / 2
        return self.final_momentum - (self.final_momentum - self.momentum) * cos

    def targets(self, inputs: Any, **kwargs: Any) -> Any:
        return call_module(self.module, read_key(inputs, self.key, "ema"))

    @torch.no_grad()
    def update(self, student: nn.Module | None = None, step: int | None = None) -> None:
        """Average the student's (merged) weights into the teacher.

        Args:
            student: the student (default: the one given at construction).
            step: the optimizer step, for the schedule (default: the number of updates so far).
        """
        student = self.student if student is None else student
        k = int(self.num_updates) if step is None else int(step)
        self.num_updates += 1
        if k % self.every:
            return
        m = self.momentum_at(k)
        source = (self.merge(student) if self.merge else student).state_dict()
        target = self.module.state_dict()
        missing = sorted(set(target) - set(source))
        extra = sorted(set(source) - set(target))
        if missing or extra:
            raise ValueError(
                f"ema: the student's weights do not match the teacher's (missing {missing[:3]}, "
                f"unexpected {extra[:3]}); with adapters, pass merge= to average merged weights"
            )
        for name, t in target.items():
            s = source[name].detach()
            if s.shape != t.shape:
                raise ValueError(
                    f"ema: {name} has shape {tuple(s.shape)}, teacher {tuple(t.shape)}"
                )
            if t.is_floating_point():
                t.mul_(m).add_(s.to(t.dtype), alpha=1.0 - m)
            else:
                t.copy_(s)

    def extra_repr(self) -> str:
        return f"momentum={self.momentum}, schedule={self.schedule!r}, every={self.every}"
