r"""Self-distillation with weighted ground truth (Borup & Andersen, "Even your Teacher Needs
Guidance: Ground-Truth Targets Dampen Regularization Imposed by Self-Distillation",
NeurIPS 2021, arXiv 2102.13088).

Step τ ≥ 1 fits the targets :math:`\alpha Y + (1-\alpha) f^{(\tau-1)}(X)`; step 0 is the
ordinary fit on :math:`Y`. :class:`SelfDistillGT` is the deep-net loss of the official
``self_distiller.py``; the functions below are the kernel-ridge analysis of
``toy_example.ipynb`` in torch float64.

Kernel ridge (regulariser c, :math:`A = K(K + cI)^{-1}`):

- recursion :math:`f^{(0)}(X) = AY`, :math:`f^{(\tau)}(X) = A(\alpha Y + (1-\alpha)f^{(\tau-1)}(X))`,
  so :math:`f^{(\tau)}(X) = B^{(\tau)}Y` with :math:`B^{(0)} = A`,
  :math:`B^{(\tau)} = A((1-\alpha)B^{(\tau-1)} + \alpha I)`;
- limit, α > 0: a fixed point satisfies :math:`(K + cI)K^{-1}f = \alpha Y + (1-\alpha) f`, i.e.
  :math:`(\alpha K + cI)K^{-1}f = \alpha Y`, so :math:`f^{(\infty)} = K(K + \tfrac{c}{\alpha}I)^{-1}Y`:
  the original problem with the regulariser amplified to c/α (the iteration converges
  because every eigenvalue of :math:`(1-\alpha)A` is below 1-α). α = 0:
  :math:`f^{(\tau)} = A^{\tau+1}Y \to 0`;
- optimal α at one step: the step's predictions are affine in α, :math:`p + \alpha q` with
  :math:`p = Pf^{(\tau-1)}(X)`, :math:`q = P(Y - f^{(\tau-1)}(X))`, P the KRR predictor at the
  evaluation points, so the squared error against z is minimised by
  :math:`\alpha^\star = \langle z - p, q\rangle / \lVert q\rVert^2` (clipped to [0, 1]).

Verified here (``tests/core/distill/test_self_distill_gt.py``): the recursion equals the
:math:`B^{(\tau)}` product and its eigen form; the limit equals KRR with c/α to 1e-10 and the
recursion reaches it, on the toy (RBF γ = 80, c = 0.2, the notebook's 11 noisy sinusoid
points); α = 0 decays to zero; :func:`optimal_alpha` equals a brute-force line search on a
1e-4 grid, and :func:`estimate_alpha` from the α = 0 and α = 1 runs equals it exactly in
the kernel case; the README's toy losses are reproduced to all 5 printed decimals (α = 0:
0.16477, 0.15076, 0.14915, 0.15561, 0.16735, 0.18251, limit 0.49505; α = 0.35: 0.16477,
0.15424, 0.15089, 0.14983, 0.14954, 0.14948, limit 0.14959). README "step s" is
:math:`f^{(s-1)}` here (its step 1 is the plain fit), and its second column is α = 0.35.

Reconstructions [R], not checked against the paper's equations: the closed form for α*
(derived above, matching the paper's claim of a closed form but not its exact target), and
:func:`estimate_alpha` for deep nets — it assumes the network's predictions are affine in α
(linearised / NTK regime), which holds exactly only for kernel ridge.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from manyview.distill.base import DistillationLoss
from manyview.losses.base import check_labels
from manyview.options import check_fraction, check_int, check_positive

__all__ = [
    "SelfDistillGT",
    "estimate_alpha",
    "krr_alpha_affine",
    "krr_limit",
    "krr_self_distillation",
    "optimal_alpha",
    "parameter_norm_penalty",
]


class SelfDistillGT(DistillationLoss):
    r"""Borup & Andersen's deep-net loss: squared error of the student's softmax against the
    one-hot label and against the teacher's softmax.

    .. math:: L = \alpha\,\mathrm{MSE}(\sigma(z_S), \mathrm{onehot}(y))
              + (1-\alpha)\,\mathrm{MSE}(\sigma(z_S), \sigma(z_T))

    MSE is the mean over the N·C entries, ``F.mse_loss``'s default as in the official
    ``self_distiller.py`` (so each term is 1/C times a per-sample squared distance). The
    official loss also adds :math:`r\sum_W \lVert W\rVert_2` (norms, not squared; r = 1e-4) over
    the student's parameters; that is a property of the model, see
    :func:`parameter_norm_penalty`. The teacher is the previous step's student, frozen.

    Args:
        alpha: weight α of the ground truth (README example: 0.6). ``alpha=1`` is step 0
            (no teacher: ``targets`` may be omitted); ``alpha=0`` is pure self-distillation
            (``labels`` may be omitted).

    Inputs: ``views`` — student logits (N, C); ``targets`` — teacher logits (N, C), without
    grad; ``labels`` (N,) integer class ids in [0, C). Output: 0-dim.

    Example::

        loss = manyview.create("loss", "self_distill_gt", alpha=0.6)
        value = loss(student(x), targets=teacher(x), labels=y)
    """

    needs = ("targets", "labels")
    student_dims = (2,)

    def __init__(self, alpha: float = 0.6) -> None:
        super().__init__()
        self.alpha = check_fraction(alpha, "alpha", self.loss_name)

    def check_targets(self, targets: Any, student: Tensor) -> Any:
        if targets is None and self.alpha == 1.0:
            return None
        return super().check_targets(targets, student)

    def compute(self, student: Tensor, *, targets: Tensor | None, labels: Any) -> Tensor:
        who = self.loss_name
        n, c = student.shape
        p = F.softmax(student, dim=-1)
        loss = student.new_zeros(())
        if labels is None:
            if self.alpha > 0:
                raise ValueError(f"{who} needs `labels=` (class ids of shape ({n},))")
        else:
            labels = check_labels(labels, n, who=who, device=student.device)
            if labels.min() < 0 or labels.max() >= c:
                raise ValueError(
                    f"{who}: labels must be class ids in [0, {c}), got values in "
                    f"[{int(labels.min())}, {int(labels.max())}]"
                )
            onehot = F.one_hot(labels.long(), c).to(student.dtype)
            loss = loss + self.alpha * F.mse_loss(p, onehot)
        if self.alpha < 1.0:
            q = F.softmax(targets, dim=-1)
            loss = loss + (1.0 - self.alpha) * F.mse_loss(p, q)
        return loss

    def _example_extras(self, student: Tensor, generator: torch.Generator | None) -> dict[str, Any]:
        """With student and teacher logits (n, d), class ids in [0, d)."""
        n, d = student.shape
        return {"labels": torch.randint(0, d, (n,), generator=generator)}

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


def parameter_norm_penalty(
    parameters: nn.Module | Iterable[Tensor], coefficient: float = 1e-4
) -> Tensor:
    r""":math:`r\sum_W \lVert W\rVert_2` over trainable parameters (Frobenius norms, not squared),
    the official ``self_distiller.py`` regulariser (``reg_coef`` 1e-4)."""
    params = parameters.parameters() if isinstance(parameters, nn.Module) else parameters
    norms = [p.norm() for p in params if p.requires_grad]
    if not norms:
        raise ValueError("parameter_norm_penalty: no trainable parameters")
    return coefficient * torch.stack(norms).sum()


# --------------------------------------------------------------------------------------------
# kernel ridge regression (float64)
# --------------------------------------------------------------------------------------------


def _as64(x: Any, name: str) -> Tensor:
    t = torch.as_tensor(x, dtype=torch.float64)
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or inf")
    return t


def _krr_inputs(
    K: Any, Y: Any, c: float, K_eval: Any, who: str
) -> tuple[Tensor, Tensor, Tensor, bool, Tensor]:
    K = _as64(K, f"{who}: K")
    Y = _as64(Y, f"{who}: Y")
    if K.dim() != 2 or K.shape[0] != K.shape[1]:
        raise ValueError(f"{who}: K must be a square (n, n) kernel matrix, got {tuple(K.shape)}")
    n = K.shape[0]
    if Y.dim() not in (1, 2) or Y.shape[0] != n:
        raise ValueError(f"{who}: Y must be ({n},) or ({n}, d), got {tuple(Y.shape)}")
    check_positive(c, "c", who)
    vector = Y.dim() == 1
    Y2 = Y[:, None] if vector else Y
    if K_eval is None:
        P = K
    else:
        P = _as64(K_eval, f"{who}: K_eval")
        if P.dim() != 2 or P.shape[1] != n:
            raise ValueError(f"{who}: K_eval must be (m, {n}), got {tuple(P.shape)}")
    return K, Y2, P, vector, torch.eye(n, dtype=torch.float64)


def krr_self_distillation(
    K: Any, Y: Any, c: float, alpha: float, steps: int, *, K_eval: Any = None
) -> Tensor:
    r"""Predictions :math:`f^{(0)}, \dots, f^{(steps)}` of kernel-ridge self-distillation.

    Args:
        K: the (n, n) training kernel matrix.
        Y: training targets (n,) or (n, d).
        c: the ridge regulariser (> 0).
        alpha: weight of the ground truth in each step's targets, in [0, 1].
        steps: the number of distillation steps after the initial fit.
        K_eval: optional (m, n) kernel between evaluation and training points; by default
            the predictions are at the training points.

    Returns:
        float64 (steps + 1, n or m[, d]); row τ holds :math:`f^{(\tau)}`.
    """
    who = "krr_self_distillation"
    K, Y2, P, vector, eye = _krr_inputs(K, Y, c, K_eval, who)
    alpha = check_fraction(alpha, "alpha", who)
    check_int(steps, "steps", who, least=0)
    chol = torch.linalg.cholesky(K + c * eye)
    fitted = Y2  # step 0 fits Y itself
    outs = []
    for _ in range(steps + 1):
        weights = torch.cholesky_solve(fitted, chol)  # (K + cI)^{-1} targets
        outs.append(P @ weights)
        fitted = alpha * Y2 + (1.0 - alpha) * (K @ weights)  # next step's targets
    out = torch.stack(outs)
    return out[..., 0] if vector else out


def krr_limit(K: Any, Y: Any, c: float, alpha: float, *, K_eval: Any = None) -> Tensor:
    r""":math:`f^{(\infty)} = K(K + \tfrac{c}{\alpha}I)^{-1}Y` for α > 0 (at the training points,
    or ``K_eval`` rows), zeros for α = 0."""
    who = "krr_limit"
    K, Y2, P, vector, eye = _krr_inputs(K, Y, c, K_eval, who)
    alpha = check_fraction(alpha, "alpha", who)
    if alpha == 0.0:
        out = torch.zeros(P.shape[0], Y2.shape[1], dtype=torch.float64)
    else:
        out = P @ torch.linalg.solve(K + (c / alpha) * eye, Y2)
    return out[:, 0] if vector else out


def krr_alpha_affine(
    K: Any, Y: Any, f_prev: Any, c: float, *, K_eval: Any = None
) -> tuple[Tensor, Tensor]:
    r"""``(p, q)`` such that the next step's predictions are :math:`p + \alpha q`.

    ``f_prev`` are the previous step's fitted values at the training points (n[, d]);
    :math:`p = P f_{prev}`, :math:`q = P(Y - f_{prev})` with P the KRR predictor
    :math:`K_{eval}(K + cI)^{-1}` (``K_eval`` defaults to K)."""
    who = "krr_alpha_affine"
    K, Y2, P, vector, eye = _krr_inputs(K, Y, c, K_eval, who)
    f = _as64(f_prev, f"{who}: f_prev")
    f2 = f[:, None] if f.dim() == 1 else f
    if f2.shape != Y2.shape:
        raise ValueError(f"{who}: f_prev must have Y's shape, got {tuple(f.shape)}")
    ridge = K + c * eye
    p = P @ torch.linalg.solve(ridge, f2)
    q = P @ torch.linalg.solve(ridge, Y2 - f2)
    return (p[:, 0], q[:, 0]) if vector else (p, q)


def optimal_alpha(z: Any, p: Any, q: Any, *, clip: bool = True) -> float:
    r""":math:`\alpha^\star = \langle z - p, q\rangle / \lVert q\rVert^2`, the minimiser of
    :math:`\lVert z - (p + \alpha q)\rVert^2` (clipped to [0, 1] unless ``clip=False``).

    ``z`` are the ground-truth targets at the evaluation points; ``p + αq`` the step's
    predictions there (see :func:`krr_alpha_affine`). [R] derived, see the module docstring.
    """
    z, p, q = (_as64(v, f"optimal_alpha: {k}") for v, k in ((z, "z"), (p, "p"), (q, "q")))
    if not z.shape == p.shape == q.shape:
        raise ValueError(
            f"optimal_alpha: z, p and q must have one shape, got "
            f"{tuple(z.shape)}, {tuple(p.shape)}, {tuple(q.shape)}"
        )
    qq = float((q * q).sum())
    if qq == 0.0:
        raise ValueError("optimal_alpha: q is zero, so the predictions do not depend on alpha")
    a = float(((z - p) * q).sum()) / qq
    return min(max(a, 0.0), 1.0) if clip else a


def estimate_alpha(f0: Any, f1: Any, z: Any, *, clip: bool = True) -> float:
    r"""Two-run estimate :math:`\hat\alpha = \langle z - f_0, f_1 - f_0\rangle/\lVert f_1 - f_0\rVert^2`.

    ``f0`` and ``f1`` are the validation predictions of students trained with α = 0 and
    α = 1 against the same teacher; ``z`` the validation targets (e.g. one-hot labels).
    Exact for kernel ridge; [R] for deep nets (assumes predictions affine in α)."""
    f0 = _as64(f0, "estimate_alpha: f0")
    f1 = _as64(f1, "estimate_alpha: f1")
    return optimal_alpha(z, f0, f1 - f0, clip=clip)
