"""DINO self-distillation (Caron, Touvron, Misra, Jégou, Mairal, Bojanowski, Joulin,
"Emerging Properties in Self-Supervised Vision Transformers", ICCV 2021).

The loss follows the official ``facebookresearch/dino`` ``DINOLoss``: cross-entropy between
the centred, sharpened teacher distribution of each global crop and the student
distribution of every other crop, averaged over pairs and the batch; the centre is an EMA
of the teacher outputs, updated after the loss. The teacher itself (an EMA of the student)
is a separate teacher provider; this module only sees its outputs.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor

from manyview.distill.base import DistillationLoss, check_targets
from manyview.losses.base import check_temperature
from manyview.options import check_fraction, check_int, check_positive


class DINOLoss(DistillationLoss):
    r"""DINO loss over V student crops and the teacher's G global crops, with centring.

    With :math:`P_t^{(g)} = \sigma((t_g - c)/\tau_t)` and :math:`P_s^{(v)} = \sigma(s_v/\tau_s)`:

    .. math:: L = \frac{1}{|\mathcal P|}\sum_{(g, v)\in\mathcal P}\frac1N\sum_{i=1}^N
              H\big(P_t^{(g)}(x_i), P_s^{(v)}(x_i)\big), \quad
              \mathcal P = \{(g, v) : g < G,\ v < V,\ v \ne g\}

    where :math:`H(p, q) = -\sum_k p_k \log q_k`; the student's first G crops are the global
    crops, in the teacher's order, so crop g is not compared with itself. In training mode,
    after the loss, the centre moves towards the mean teacher output (over the batch and
    the G crops, and over ranks when ``torch.distributed`` is initialised):
    :math:`c \leftarrow m\,c + (1-m)\,\bar t`. ``.eval()`` freezes it.

    Teacher temperature warm-up (the paper's 0.04 → 0.07 over 30 epochs) is the official
    schedule: ``linspace(start, end, steps)[k]`` at step k < steps, then ``end``. The step is
    whatever unit you count (epochs, as in DINO, or iterations); set it with
    :meth:`set_step` or ``step=`` in the call. It is never advanced automatically.

    Args:
        out_dim: K, the size of the projection head's output (default 65536, DINO's); the
            centre has this size.
        student_temperature: τ_s (DINO: 0.1).
        teacher_temperature: τ_t (DINO code default: 0.04; above 0.07 is unstable). With a
            warm-up, the temperature after it, so it must equal the warm-up's ``end``.
        teacher_temperature_warmup: ``(start, end, steps)`` for a linear warm-up of τ_t, or
            ``None`` (default, the code's default: no warm-up).
        center_momentum: m (DINO: 0.9).
        num_global: G, the number of global crops the teacher sees (DINO: 2).
        sync_center: all-reduce the centre's batch mean over ranks when
            ``torch.distributed`` is initialised (default ``True``, as DINO does).

    Inputs: ``views`` — student outputs (N, V, K) for all V crops (stack them:
    ``torch.stack(outs, 1)``), the first G the global crops; ``targets`` — teacher outputs
    (N, G, K) of the global crops, without grad; optional ``step`` (int) sets the
    schedule step first. ``labels`` are not used. Output: 0-dim.

    State: buffers ``center`` (K,) and ``step`` (0-dim int64), saved in ``state_dict``.

    Example::

        loss = manyview.create("loss", "dino", out_dim=4096)
        value = loss(student_out, targets=teacher_out)   # (N, 10, 4096), (N, 2, 4096)
    """

    student_dims = (3,)
    same_shape = False

    center: Tensor
    step: Tensor

    def __init__(
        self,
        out_dim: int = 65536,
        *,
        student_temperature: float = 0.1,
        teacher_temperature: float = 0.04,
        teacher_temperature_warmup: tuple[float, float, int] | None = None,
        center_momentum: float = 0.9,
        num_global: int = 2,
        sync_center: bool = True,
    ) -> None:
        super().__init__()
        who = self.loss_name
        self.out_dim = check_int(out_dim, "out_dim", who)
        num_global = check_int(num_global, "num_global", who)
        center_momentum = check_fraction(center_momentum, "center_momentum", who)
        self.student_temperature = check_temperature(
            student_temperature, "student_temperature", who
        )
        self.teacher_temperature = check_temperature(
            teacher_temperature, "teacher_temperature", who
        )
        self.teacher_temperature_warmup = self._check_warmup(teacher_temperature_warmup)
        self.center_momentum = center_momentum
        self.num_global = num_global
        self.sync_center = bool(sync_center)
        self.register_buffer("center", torch.zeros(out_dim))
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def _check_warmup(self, warmup: Any) -> tuple[float, float, int] | None:
        who = self.loss_name
        if warmup is None:
            return None
        if not isinstance(warmup, tuple | list) or len(warmup) != 3:
            raise ValueError(
                f"{who}: teacher_temperature_warmup must be (start, end, steps), got {warmup!r}"
            )
        start, end, steps = warmup
        start = check_positive(start, "the warm-up start temperature", who)
        end = check_positive(end, "the warm-up end temperature", who)
        check_int(steps, "the warm-up steps", who)
        if end != self.teacher_temperature:
            raise ValueError(
                f"{who}: the warm-up ends at {end} but teacher_temperature is "
                f"{self.teacher_temperature}; pass teacher_temperature={end} (the temperature "
                "after the warm-up)"
            )
        return (start, end, steps)

    def set_step(self, step: int) -> None:
        """Set the schedule step (epoch or iteration) used by the teacher temperature."""
        if isinstance(step, Tensor):
            step = int(step.item())
        check_int(step, "step", self.loss_name, least=0)
        self.step.fill_(step)

    def teacher_temperature_at(self, step: int | None = None) -> float:
        """τ_t at ``step`` (default: the stored step)."""
        k = int(self.step.item()) if step is None else int(step)
        if self.teacher_temperature_warmup is None:
            return self.teacher_temperature
        start, end, steps = self.teacher_temperature_warmup
        if k >= steps:
            return end
        if steps == 1:  # linspace(start, end, 1) == [start]
            return start
        return start + (end - start) * k / (steps - 1)

    def check_targets(self, targets: Any, student: Tensor) -> Tensor:
        who = self.loss_name
        t = check_targets(targets, who, like=student, same_shape=False, min_dim=3, max_dim=3)
        n, v, k = student.shape
        g = self.num_global
        if k != self.out_dim:
            raise ValueError(
                f"{who}: the student output has K = {k} dimensions but out_dim = {self.out_dim}"
            )
        if t.shape != (n, g, k):
            raise ValueError(
                f"{who}: teacher targets must have shape (N, G, K) = ({n}, {g}, {k}) — the "
                f"num_global = {g} global crops — got {tuple(t.shape)}"
            )
        if v < g or v < 2:
            raise ValueError(
                f"{who}: the student must see the {g} global crops and at least one other "
                f"crop (V >= max(G, 2)), got V = {v}"
            )
        return t

    def compute(
        self,
        student: Tensor,
        *,
        targets: Tensor,
        labels: Tensor | None = None,
        step: int | None = None,
    ) -> Tensor:
        if step is not None:
            self.set_step(step)
        n, v, _ = student.shape
        g = self.num_global
        tau_t = self.teacher_temperature_at()
        center = self.center.to(device=student.device, dtype=student.dtype)
        teacher_p = F.softmax((targets - center) / tau_t, dim=-1)  # (N, G, K)
        student_logp = F.log_softmax(student / self.student_temperature, dim=-1)  # (N, V, K)
        cross = -torch.einsum("ngk,nvk->ngv", teacher_p, student_logp)  # (N, G, V)
        pairs = torch.ones(g, v, dtype=torch.bool, device=student.device)
        pairs[torch.arange(g), torch.arange(g)] = False
        loss = cross[:, pairs].sum() / (n * int(pairs.sum()))
        if self.training:
            self.update_center(targets)
        return loss

    @torch.no_grad()
    def update_center(self, teacher_output: Tensor) -> None:
        """``c <- m c + (1 - m) mean(t)`` over the batch and crops (and ranks) of (N, G, K)."""
        t = teacher_output.detach().reshape(-1, self.out_dim)
        batch_sum = t.sum(dim=0)
        count = t.shape[0]
        if self.sync_center and dist.is_available() and dist.is_initialized():
            dist.all_reduce(batch_sum)
            count *= dist.get_world_size()
        batch_mean = (batch_sum / count).to(self.center.dtype)
        self.center.mul_(self.center_momentum).add_(batch_mean, alpha=1 - self.center_momentum)

    def _example_shapes(
        self, n: int, m: int | None, d: int
    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Student (n, V, out_dim) with V = ``m`` or G + 2 crops and teacher (n, G, out_dim)
        targets; ``d`` is ignored (the size is ``out_dim``)."""
        g = self.num_global
        v = max(m if m is not None else g + 2, g, 2)
        return (n, v, self.out_dim), (n, g, self.out_dim)

    def extra_repr(self) -> str:
        warm = (
            f", teacher_temperature_warmup={self.teacher_temperature_warmup}"
            if self.teacher_temperature_warmup
            else ""
        )
        return (
            f"out_dim={self.out_dim}, student_temperature={self.student_temperature}, "
            f"teacher_temperature={self.teacher_temperature}{warm}, "
            f"center_momentum={self.center_momentum}, num_global={self.num_global}"
        )
