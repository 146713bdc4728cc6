r"""The interpolated MI bound I_α between student and teacher features (Poole, Ozair, van den
Oord, Alemi, Tucker, "On Variational Bounds of Mutual Information", ICML 2019), as the
intermediate-layer objective ``mi`` of Distiller (He, Shi, Mueller, Zha, Li, Karypis,
"Distiller: A Systematic Study of Model Distillation Methods in Natural Language
Processing", SustaiNLP 2021).

Estimator [C]: ``interpolated_lower_bound`` of Poole et al.'s code, which Distiller's
``textbrewer/losses.py`` ports. By default (``rows="teacher"``) scores are laid out
``scores[i, j] = f(s_j, t_i)`` (rows: teacher, as Poole et al.'s separable critic
``h(y) g(x)^T``), the learned log-baseline is a function of the teacher, and
:math:`m(t; s_{1:K})` is estimated leave-one-out:

- :math:`L_{ij} = \log\frac{1}{N-1}\sum_{k\ne j} e^{f(s_k, t_i)}` and
  :math:`B_{ij} = \log(\alpha e^{L_{ij}} + (1-\alpha) e^{\psi(t_i)})`;
- joint term: mean over i ≠ j of :math:`f(s_i, t_i) - B_{ij}` — pair i with a baseline that
  includes :math:`s_i` and leaves out one other :math:`s_j`, averaged over j;
- marginal term: mean over i ≠ j of :math:`e^{f(s_j, t_i) - B_{ii}}` — :math:`t_i` against the
  independent :math:`s_j`, with a baseline over every :math:`s_k` but its own partner;
- :math:`I_\alpha = 1 + \text{joint} - \text{marginal}`, so the effective K is N - 1.

Distiller calls its critic as ``critic(student, teacher)``, which puts the students on the
rows (``scores[i, j] = f(s_i, t_j)``) while its baseline stays ψ(t_i) of the teacher on row
i: its bound is the one above on the transposed score matrix, where the leave-one-out mean
runs over the teachers and row i's baseline belongs to :math:`s_i`'s partner rather than to
the row's own variable. ``rows="student"`` reproduces it. The default keeps Poole et al.'s
layout, where the baseline q(t) and the mean m(t; s) are both functions of the row's t, as
the bound's derivation requires.

α = 1 is InfoNCE-like and bounded by log(N - 1) (the marginal term is then exactly 1);
α = 0 is TUBA with the learned baseline. (N, T, D) hidden states are flattened to
(N, T·D) before the critic; current Distiller instead takes the first token ``x[:, 0]``
for its MLP critic (a flattening line is commented out there) — pass ``x[:, 0]`` to match.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from manyview.distill.base import DistillationLoss, check_targets
from manyview.options import check_fraction, check_int, check_ints

__all__ = ["MIAlpha", "log_loo_mean_exp", "mi_lower_bound"]


def log_loo_mean_exp(scores: Tensor) -> Tensor:
    r"""Leave-one-out log-mean-exp along rows: ``out[i, j]`` is
    :math:`\log\frac{1}{K-1}\sum_{k\ne j} e^{s_{ik}}` for ``scores`` (N, K), K ≥ 2.

    Stable without an (N, K, K) tensor: for j not the row's argmax the kept terms include
    the maximum, so :math:`\sum_k e^{s_{ik}-\max} - e^{s_{ij}-\max} \ge 1` loses no precision;
    for the argmax, the row's log-sum-exp without it is computed directly."""
    k = scores.shape[1]
    if k < 2:
        raise ValueError(f"log_loo_mean_exp needs at least 2 columns, got {k}")
    top = scores.detach().max(dim=1, keepdim=True)
    is_top = torch.zeros_like(scores, dtype=torch.bool).scatter_(1, top.indices, True)
    e = (scores - top.values).exp()
    rest = e.sum(dim=1, keepdim=True) - e  # sum over k != j, relative to the row max
    rest = torch.where(is_top, torch.ones_like(rest), rest)  # unused there; keeps grads finite
    others = top.values + rest.log()
    without_top = scores.masked_fill(is_top, float("-inf")).logsumexp(dim=1, keepdim=True)
    return torch.where(is_top, without_top, others) - math.log(k - 1)


def mi_lower_bound(
    scores: Tensor, log_baseline: Tensor | None = None, alpha: float = 0.5
) -> Tensor:
    r"""Poole et al.'s interpolated bound :math:`I_\alpha` from critic scores.

    Args:
        scores: (N, N) with ``scores[i, j] = f(s_j, t_i)`` — row i the teacher sample, column
            j the student sample, the diagonal the jointly drawn pairs.
        log_baseline: (N,) :math:`\psi(t_i) = \log q(t_i)`; unused (may be ``None``) for α = 1.
        alpha: the interpolation weight in [0, 1] (Distiller: 0.5).

    Returns:
        the 0-dim estimate :math:`I_\alpha` (a lower bound in expectation), computed in log
        space; α ∈ {0, 1} drop the other branch exactly.
    """
    who = "mi_lower_bound"
    alpha = check_fraction(alpha, "alpha", who)
    if scores.dim() != 2 or scores.shape[0] != scores.shape[1] or scores.shape[0] < 2:
        raise ValueError(
            f"{who}: scores must be square (N, N) with N >= 2, got {tuple(scores.shape)}"
        )
    n = scores.shape[0]
    if alpha < 1.0:
        if log_baseline is None:
            raise ValueError(f"{who}: alpha < 1 needs log_baseline (N,)")
        log_baseline = log_baseline.reshape(-1)
        if log_baseline.shape[0] != n:
            raise ValueError(
                f"{who}: log_baseline must have shape ({n},), got {tuple(log_baseline.shape)}"
            )
        psi = log_baseline.to(scores.dtype)[:, None].expand(n, n)
    if alpha == 0.0:
        base = psi
    else:
        loo = log_loo_mean_exp(scores)
        if alpha == 1.0:
            base = loo
        else:
            base = torch.logaddexp(math.log(alpha) + loo, math.log1p(-alpha) + psi)
    off = ~torch.eye(n, dtype=torch.bool, device=scores.device)
    joint = (scores.diagonal()[:, None] - base)[off].mean()
    marg_log = (scores - base.diagonal()[:, None])[off].logsumexp(dim=0) - math.log(n * (n - 1))
    return 1.0 + joint - marg_log.exp()


def _mlp(d_in: int, hidden: int, d_out: int, layers: int) -> nn.Sequential:
    mods: list[nn.Module] = []
    width = d_in
    for _ in range(layers):
        mods += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    mods.append(nn.Linear(width, d_out))
    return nn.Sequential(*mods)


class MIAlpha(DistillationLoss):
    r"""Negative interpolated MI bound between student and teacher features, with a learned
    separable critic and log-baseline (Distiller's ``mi`` intermediate loss).

    .. math:: I_\alpha = 1 + \mathbb E_{p(s_{1:K})p(t|s_1)}\Big[\log\frac{e^{f(s_1,t)}}
              {\alpha\,m(t; s_{1:K}) + (1-\alpha)q(t)}\Big]
              - \mathbb E_{p(s_{1:K})p(t)}\Big[\frac{e^{f(s_1,t)}}
              {\alpha\,m(t; s_{1:K}) + (1-\alpha)q(t)}\Big],
              \quad L = -I_\alpha

    with :math:`f(s, t) = \langle\phi_S(s), \phi_T(t)\rangle`, :math:`\log q(t) = \psi(t)`,
    :math:`m(t; s_{1:K}) = \frac1K\sum_k e^{f(s_k, t)}` estimated leave-one-out over the batch
    (see :func:`mi_lower_bound`). The ratio is computed as
    :math:`\exp(f - \mathrm{logaddexp}(\log\alpha + \log m, \log(1-\alpha) + \psi))`.
    :math:`\phi_S, \phi_T, \psi` are MLPs owned by this module: put its parameters in the
    student's optimizer (Distiller trains them jointly). Gradients reach the student and
    the critic, never the teacher (targets with grad are refused).

    Args:
        student_dim: size of the (flattened) student features (default 768, BERT-base's
            width; set it to your student's).
        teacher_dim: size of the (flattened) teacher features (default 768).
        alpha: α in [0, 1] (Distiller: 0.5); 1 gives an InfoNCE-type bound (≤ log(N-1)),
            0 TUBA with the learned baseline (no baseline network is built for α = 1).
        hidden_dim: width of the critic heads' hidden layers (Distiller: 512).
        embed_dim: output size of :math:`\phi_S, \phi_T` (Distiller: 64).
        baseline_hidden_dim: width of the baseline MLP's hidden layers (512).
        num_hidden_layers: hidden layers per MLP (default 1, the lighter choice; Distiller's
            MLP critic heads and baseline have 2, so 2 reproduces them).
        rows: which side is on the rows of the critic's score matrix: ``"teacher"``
            (default, Poole et al.'s layout, see the module docstring) or ``"student"``
            (Distiller's layout: the same bound on the transposed matrix).

    Inputs: ``views`` — student features (N, student_dim) or (N, T, D) flattened to
    (N, T·D) (Distiller takes the first token instead); ``targets`` — teacher features (N, teacher_dim) or (N, T', D'), without grad;
    N ≥ 2. ``labels`` are not used. Output: 0-dim, :math:`-I_\alpha`.

    Example::

        loss = manyview.create("loss", "mi_alpha", student_dim=384, teacher_dim=768)
        value = loss(student_cls, targets=teacher_cls)
    """

    same_shape = False
    from_context: ClassVar[dict[str, str]] = {
        "student_dim": "student_dim",
        "teacher_dim": "teacher_dim",
    }

    def __init__(
        self,
        student_dim: int = 768,
        teacher_dim: int = 768,
        *,
        alpha: float = 0.5,
        hidden_dim: int = 512,
        embed_dim: int = 64,
        baseline_hidden_dim: int = 512,
        num_hidden_layers: int = 1,
        rows: str = "teacher",
    ) -> None:
        super().__init__()
        who = self.loss_name
        if rows not in ("teacher", "student"):
            raise ValueError(
                f"{who}: rows must be 'teacher' (Poole et al.'s layout) or 'student' "
                f"(Distiller's), got {rows!r}"
            )
        self.rows = rows
        check_ints(
            who,
            student_dim=student_dim,
            teacher_dim=teacher_dim,
            hidden_dim=hidden_dim,
            embed_dim=embed_dim,
            baseline_hidden_dim=baseline_hidden_dim,
        )
        check_int(num_hidden_layers, "num_hidden_layers", who, least=0)
        self.alpha = check_fraction(alpha, "alpha", who)
        self.student_dim = student_dim
        self.teacher_dim = teacher_dim
        self.student_head = _mlp(student_dim, hidden_dim, embed_dim, num_hidden_layers)
        self.teacher_head = _mlp(teacher_dim, hidden_dim, embed_dim, num_hidden_layers)
        self.baseline = (
            _mlp(teacher_dim, baseline_hidden_dim, 1, num_hidden_layers) if self.alpha < 1 else None
        )

    def _flat(self, x: Tensor, expected: int, what: str) -> Tensor:
        flat = x.reshape(x.shape[0], -1)
        if flat.shape[1] != expected:
            raise ValueError(
                f"{self.loss_name}: {what} features have {flat.shape[1]} dimensions "
                f"(shape {tuple(x.shape)}), but {what}_dim = {expected}; pass {what}_dim="
                f"{flat.shape[1]}"
            )
        return flat

    def check_targets(self, targets: Any, student: Tensor) -> Tensor:
        t = check_targets(targets, self.loss_name, like=student, same_shape=False, max_dim=3)
        if t.dim() < 2:
            raise ValueError(
                f"{self.loss_name}: teacher features must be (N, D) or (N, T, D), got "
                f"{tuple(t.shape)}"
            )
        self._flat(t, self.teacher_dim, "teacher")
        return t

    def _param_dtype(self) -> torch.dtype:
        return next(self.student_head.parameters()).dtype

    def critic_scores(self, student: Tensor, teacher: Tensor) -> Tensor:
        """``scores[i, j] = <phi_T(t_i), phi_S(s_j)>`` (N, N) — rows teacher, columns student."""
        dtype = self._param_dtype()
        s = self.student_head(self._flat(student, self.student_dim, "student").to(dtype))
        t = self.teacher_head(self._flat(teacher, self.teacher_dim, "teacher").to(dtype))
        return t @ s.T

    def log_baseline(self, teacher: Tensor) -> Tensor:
        """ψ(t_i) (N,); only for α < 1."""
        if self.baseline is None:
            raise ValueError(f"{self.loss_name}: alpha = 1 has no baseline network")
        t = self._flat(teacher, self.teacher_dim, "teacher").to(self._param_dtype())
        return self.baseline(t).squeeze(-1)

    def compute(self, student: Tensor, *, targets: Tensor, labels: Any = None) -> Tensor:
        n = student.shape[0]
        if n < 2:
            raise ValueError(f"{self.loss_name} needs a batch of at least 2 pairs, got N = {n}")
        out_dtype = torch.promote_types(student.dtype, self._param_dtype())
        scores = self.critic_scores(student, targets).to(out_dtype)
        if self.rows == "student":  # Distiller: scores[i, j] = f(s_i, t_j), baseline psi(t_i)
            scores = scores.T
        psi = self.log_baseline(targets).to(out_dtype) if self.baseline is not None else None
        return -mi_lower_bound(scores, psi, self.alpha)

    def _example_shapes(
        self, n: int, m: int | None, d: int
    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Student (n, student_dim) and teacher (n, teacher_dim) features; ``m``, ``d``
        are ignored."""
        return (n, self.student_dim), (n, self.teacher_dim)

    def extra_repr(self) -> str:
        return (
            f"student_dim={self.student_dim}, teacher_dim={self.teacher_dim}, "
            f"alpha={self.alpha}, rows={self.rows!r}"
        )
