"""The Self-E training objective (Yu et al., "Self-Evaluation Unlocks Any-Step Text-to-Image
Generation", arXiv 2512.22374, eqs. 6–7, 14–21 and App. S.1–S.2), with flow matching as the
same code at λ = 0.

**Convention** (the paper's, and rectified flow's): x_t = (1−t) x0 + t ε, t = 1 is noise. A
denoiser is called as ``model(x_t, t, s, cond) -> V``: ``x_t`` (N, ...), ``t`` and ``s`` (N,)
in [0, 1] with s <= t (the landing time of a step from t), ``cond`` (N, ...) the prompt's
encoding (the null prompt's for unconditional rows); ``V`` is a velocity like ``x_t`` and
the clean estimate is G(x_t, t, s, c) = x̂0 = x_t − t V (eq. 6).

**Objective.** With x̂0 = G(x_t, t, s, c) (the only pass with gradients):

- re-noise at the landing time (eq. 14): x̂s = (1−s) sg[x̂0] + s ε′;
- self-evaluate: x_self = sg[x̂0 − (G(x̂s, s, s, ∅) − G(x̂s, s, s, c))], the conditional
  branch from the EMA model, the unconditional from the online one, both without gradients
  and in eval mode (:func:`evaluate`); the gradient of λ‖x̂0 − x_self‖² in x̂0 is then the
  classifier-score direction 2λ(G(∅) − G(c)) (App. S.1);
- merge (eqs. 16–17): λ = t/(1−t) − s/(1−s) and (x0 + λ x_self)/(1+λ) = (1−β) x0 + β x_self
  with β = λ/(1+λ) = (t−s)/((1−t)(1−s) + (t−s)), finite at t = 1 where λ diverges;
- renormalise (eqs. 18–20): x_renorm = x_dir ‖x0‖/‖x_dir‖, x_dir the merged target, so a
  large λ cannot shift the target's energy (the paper's "color bias");
- regress (eq. 21): E[w ‖x̂0 − x_renorm‖²] with w = 1/t² (t clamped below at ``t_min``).

At s = t, β = 0 and the target is x0; since (x̂0 − x0)/t = (ε − x0) − V the loss is then the
flow-matching velocity MSE, which is :class:`SelfELoss` with ``mode="flow_matching"`` (s = t
on every row, one network pass).

**Auxiliary fake score** (App. S.1.2): the same network also learns the score of its own
samples under the prompt c_fake ("fake image" + prompt): Δ = k(G(∅) − G(c)) + (1−k)(G(c_fake)
− G(c)) at (x̂s, s, s), x_self = sg[x̂0 − Δ], plus ``fake_weight`` ‖G(sg[x̂s], s, s, c_fake) −
sg[x̂0]‖².

Optimiser, sampling and time-shift conventions follow the reference code of the same group,
``Totoro97/minFM`` (``utils_fm/sampler.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from manyview.options import (
    check_choice,
    check_fraction,
    check_int,
    check_non_negative,
    check_number,
    check_positive,
)

__all__ = [
    "MODES",
    "Denoiser",
    "SelfELoss",
    "draw_times",
    "evaluate",
    "lambda_st",
    "merge_beta",
    "renormalized_target",
    "self_evaluation",
    "tau_at",
]

Denoiser = Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]
"""``model(x_t, t, s, cond) -> V``: a velocity like ``x_t`` (N, ...), for ``t``, ``s`` (N,)."""

MODES = ("self_e", "flow_matching")
"""The objectives :class:`SelfELoss` computes."""

_WHO = "self_e"


def _up(x: Tensor) -> Tensor:
    """``x`` in at least float32 (bf16 / fp16 differences are squared in float32)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _as_time(x: Any) -> Tensor:
    x = torch.as_tensor(x)
    return _up(x if x.is_floating_point() else x.to(torch.float32))


def _times(t: Any, s: Any, who: str) -> tuple[Tensor, Tensor]:
    """``t`` and ``s`` as float tensors (at least float32) with 0 <= s <= t <= 1."""
    t, s = _as_time(t), _as_time(s)
    t, s = torch.broadcast_tensors(t, s.to(device=t.device, dtype=t.dtype))
    if not bool(((s >= 0) & (s <= t) & (t <= 1)).all()):
        raise ValueError(f"{who}: times must satisfy 0 <= s <= t <= 1 (t = 1 is noise)")
    return t, s


def lambda_st(t: Any, s: Any, *, lambda_clamp: float | None = None) -> Tensor:
    """λ(t, s) = σ_t/α_t − σ_s/α_s = t/(1−t) − s/(1−s) (eq. 17), the weight of the
    self-evaluation term: 0 where s = t (also at s = t = 1), ``inf`` at t = 1 > s.

    Args:
        t, s: times (N,) or scalars with 0 <= s <= t <= 1.
        lambda_clamp: clamp λ to at most this value (``None``: no clamp).
    """
    t, s = _times(t, s, "lambda_st")
    lam = t / (1 - t) - s / (1 - s)
    lam = torch.where(s == t, torch.zeros_like(lam), lam)
    if lambda_clamp is not None:
        lam = lam.clamp(max=check_positive(lambda_clamp, "lambda_clamp", "lambda_st"))
    return lam


def merge_beta(t: Any, s: Any, *, lambda_clamp: float | None = None) -> Tensor:
    """β = λ/(1+λ) = (t−s)/((1−t)(1−s) + (t−s)), the share of x_self in the merged target
    (x0 + λ x_self)/(1+λ) = (1−β) x0 + β x_self: 1 at t = 1 > s, 0 where s = t (with no 0/0
    at s = t = 1), finite everywhere.

    Args:
        t, s: times (N,) or scalars with 0 <= s <= t <= 1.
        lambda_clamp: the β of λ clamped to at most this value, c/(1+c) at most.
    """
    t, s = _times(t, s, "merge_beta")
    gap = t - s
    denom = (1 - t) * (1 - s) + gap
    same = s == t
    beta = torch.where(same, torch.zeros_like(gap), gap / torch.where(same, 1.0, denom))
    if lambda_clamp is not None:
        c = check_positive(lambda_clamp, "lambda_clamp", "merge_beta")
        beta = beta.clamp(max=c / (1 + c))
    return beta


def _per_sample(beta: Tensor, like: Tensor) -> Tensor:
    """``beta`` (N,) or a scalar viewed to broadcast over ``like`` (N, ...)."""
    if beta.dim() == 0:
        return beta.expand(like.shape[0]).reshape((-1,) + (1,) * (like.dim() - 1))
    if beta.shape != like.shape[:1]:
        raise ValueError(
            f"renormalized_target: beta must be (N,) = ({like.shape[0]},), got {tuple(beta.shape)}"
        )
    return beta.reshape((-1,) + (1,) * (like.dim() - 1))


def renormalized_target(x0: Tensor, x_self: Tensor, beta: Any, scope: str = "sample") -> Tensor:
    """The energy-preserving target (eqs. 18–20): x_dir ‖x0‖ / max(‖x_dir‖, 1e-12) with
    x_dir = (1−β) x0 + β x_self; exactly ``x0`` on rows where β = 0.

    Args:
        x0: clean data (N, ...).
        x_self: the self-evaluated target, like ``x0``.
        beta: β (N,) or a scalar (:func:`merge_beta`).
        scope: ``"sample"`` (one norm over all of a sample's elements) or ``"token"`` (a
            norm over axis 1 at every other position: the channels of each pixel of an
            (N, C, H, W) latent; for (N, D) inputs the same as ``"sample"``).

    Returns:
        The target like ``x0``, in at least float32.
    """
    who = "renormalized_target"
    scope = check_choice(scope, ("sample", "token"), "scope", who)
    if not isinstance(x0, Tensor) or not isinstance(x_self, Tensor) or x0.dim() < 2:
        raise ValueError(f"{who}: x0 and x_self must be tensors (N, ...)")
    if x0.shape != x_self.shape:
        raise ValueError(
            f"{who}: x_self {tuple(x_self.shape)} must have x0's shape {tuple(x0.shape)}"
        )
    x0, x_self = _up(x0), _up(x_self)
    b = _per_sample(_up(torch.as_tensor(beta, device=x0.device)).to(x0.dtype), x0)
    x_dir = (1 - b) * x0 + b * x_self
    dims = tuple(range(1, x0.dim())) if scope == "sample" else (1,)
    norm = torch.linalg.vector_norm
    scale = norm(x0, dim=dims, keepdim=True) / norm(x_dir, dim=dims, keepdim=True).clamp_min(1e-12)
    return torch.where(b == 0, x0, x_dir * scale)


def tau_at(progress: Any, anneal_fraction: Any) -> float:
    """τ, the widest gap s ∈ [(1−τ)t, t] drawn: rising linearly from 0 to 1 over the first
    ``anneal_fraction`` of training (the paper: over 300k of 710k iterations), then 1.

    Args:
        progress: the share of training done, in [0, 1].
        anneal_fraction: in [0, 1]; 0 gives τ = 1 from the start.
    """
    progress = check_fraction(progress, "progress", "tau_at")
    anneal_fraction = check_fraction(anneal_fraction, "anneal_fraction", "tau_at")
    return 1.0 if anneal_fraction == 0 else min(progress / anneal_fraction, 1.0)


def draw_times(
    n: int,
    *,
    generator: torch.Generator | None = None,
    mu: float = 0.0,
    s_equal_prob: float = 0.5,
    tau: float,
    device: torch.device | str | None = None,
) -> tuple[Tensor, Tensor]:
    """Self-E's training times (App. S.2): t = sigmoid(z), z ~ N(0, 1), shifted by μ as
    t ← e^μ / (e^μ + 1/t − 1) (= sigmoid(z + μ), minFM's time shift); s = t with probability
    ``s_equal_prob``, else s ~ U((1−τ)t, t).

    Args:
        n: the batch size.
        generator: the only source of randomness (draws z, then the s = t coin, then U).
        mu: the shift (the paper: 0.5 at 512 tokens to 1.15 at 4096; 0 for tiny models).
        s_equal_prob: the share of rows with s = t (pure data term).
        tau: the widest relative gap, in [0, 1] (:func:`tau_at`).
        device: where to draw (default: the generator's device, else the CPU).

    Returns:
        ``(t, s)``, both float32 (n,), with 0 <= s <= t <= 1.
    """
    n = check_int(n, "n", "draw_times")
    mu = check_number(mu, "mu", "draw_times")
    s_equal_prob = check_fraction(s_equal_prob, "s_equal_prob", "draw_times")
    tau = check_fraction(tau, "tau", "draw_times")
    if device is None:
        device = generator.device if generator is not None else "cpu"
    z = torch.randn(n, generator=generator, device=device)
    t = torch.sigmoid(z + mu)
    same = torch.rand(n, generator=generator, device=device) < s_equal_prob
    u = torch.rand(n, generator=generator, device=device)
    s = torch.where(same, t, t * (1 - tau * u))
    return t, s


def _modes(model: nn.Module) -> list[tuple[nn.Module, bool]]:
    return [(m, m.training) for m in model.modules()]


def _check_out(out: Any, x: Tensor, who: str) -> Tensor:
    if not isinstance(out, Tensor) or out.shape != x.shape:
        got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise ValueError(
            f"{who}: the denoiser must return a velocity like x_t {tuple(x.shape)}, got {got}"
        )
    return out


def evaluate(model: nn.Module, x: Tensor, t: Tensor, s: Tensor, cond: Tensor) -> Tensor:
    """One evaluator pass ``model(x, t, s, cond)`` without gradients and in eval mode: the
    train/eval flag of every submodule is put back afterwards (also on an error), so batch
    norm statistics, dropout, parameters and their ``.grad`` are left as they were.

    Returns:
        The velocity V like ``x``, with no autograd history.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"evaluate: model must be an nn.Module, got {type(model).__name__}")
    modes = _modes(model)
    model.eval()
    try:
        with torch.no_grad():
            out = model(x, t, s, cond)
    finally:
        for module, training in modes:
            module.training = training
    return _check_out(out, x, "evaluate")


def _view(t: Tensor, like: Tensor) -> Tensor:
    return t.reshape((-1,) + (1,) * (like.dim() - 1))


def _clean(v: Tensor, x: Tensor, t: Tensor) -> Tensor:
    """x̂0 = x − t V (eq. 6) in at least float32."""
    return _up(x) - _view(t, x).to(_up(x).dtype) * _up(v)


def self_evaluation(
    model: nn.Module,
    x_hat0: Tensor,
    s: Tensor,
    eps_prime: Tensor,
    cond: Tensor,
    null_cond: Tensor,
    *,
    cond_model: nn.Module | None = None,
    fake_cond: Tensor | None = None,
    k: float = 0.9,
    se_scale: float = 1.0,
) -> tuple[Tensor, Tensor, Tensor]:
    """The self-evaluated target of eq. 14 (and App. S.1.2 with ``fake_cond``).

    x̂s = (1−s) sg[x̂0] + s ε′, then, all at (x̂s, s, s) through :func:`evaluate`:
    Δ = G(∅) − G(c) (G(c) from ``cond_model``, the others from ``model``), or with
    ``fake_cond`` Δ = k(G(∅) − G(c)) + (1−k)(G(c_fake) − G(c)); x_self = sg[x̂0 − se_scale·Δ].

    Args:
        model: the online denoiser (unconditional and fake branches).
        x_hat0: x̂0 (N, ...), with or without autograd history (it is detached here).
        s: landing times (N,).
        eps_prime: the re-noising noise, like ``x_hat0``.
        cond, null_cond, fake_cond: encodings (N, ...).
        cond_model: the conditional branch's model (the EMA copy); default ``model``.
        k: the classifier-score share with ``fake_cond``.
        se_scale: the scale of Δ.

    Returns:
        ``(x_self, delta, x_s)``, in at least float32, without autograd history.
    """
    x0d = _up(x_hat0.detach())
    sv = _view(s, x0d).to(x0d.dtype)
    x_s = ((1 - sv) * x0d + sv * _up(eps_prime)).to(eps_prime.dtype)
    cond_model = model if cond_model is None else cond_model
    g_c = _clean(evaluate(cond_model, x_s, s, s, cond), x_s, s)
    g_null = _clean(evaluate(model, x_s, s, s, null_cond), x_s, s)
    delta = g_null - g_c
    if fake_cond is not None:
        g_fake = _clean(evaluate(model, x_s, s, s, fake_cond), x_s, s)
        delta = k * delta + (1 - k) * (g_fake - g_c)
    return x0d - se_scale * delta, delta, _up(x_s)


def _per_row(x: Tensor) -> Tensor:
    """The mean over every axis but the first, (N,)."""
    return x.flatten(1).mean(dim=1)


def _check_tensor(x: Any, name: str, who: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise ValueError(f"{who}: {name} must be a tensor, got {type(x).__name__}")
    if x.is_floating_point() and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{who}: {name} holds NaN or inf values; check the data pipeline")
    return x


def _check_cond(c: Any, name: str, n: int, trailing: tuple[int, ...] | None, who: str) -> Tensor:
    """``c`` (n, ...) (or (1, ...), expanded), with the trailing shape ``trailing``."""
    c = _check_tensor(c, name, who)
    if c.dim() < 1 or c.shape[0] not in (1, n):
        raise ValueError(
            f"{who}: {name} must be (N, ...) with N = {n} rows (the batch), got {tuple(c.shape)}"
        )
    if trailing is not None and tuple(c.shape[1:]) != trailing:
        raise ValueError(f"{who}: {name} {tuple(c.shape)} must be shaped like cond (N, {trailing})")
    return c.expand(n, *c.shape[1:]) if c.shape[0] == 1 and n > 1 else c


class SelfELoss(nn.Module):
    """Self-E's loss (eq. 21), or flow matching on the same code (``mode="flow_matching"``).

    Called as ``loss(model, x0, cond, null_cond, *, generator, progress, ema_model,
    fake_cond) -> (total, components)``. Network passes per call: Self-E 3 (x̂0 with
    gradients, then the two evaluator passes, skipped when every row has s = t), 5 with the
    auxiliary term on; flow matching 1.

    Args:
        mode: ``"self_e"`` or ``"flow_matching"`` (s = t always, no evaluator passes).
        t_min: the clamp of t in w = 1/max(t, t_min)² (0.05).
        mu: the time shift of :func:`draw_times` (0; the paper 0.5 to 1.15 by resolution).
        s_equal_prob: the share of rows with s = t (0.5).
        anneal_fraction: τ rises from 0 to 1 over this share of training (0.4; the paper:
            300k of 710k iterations).
        renorm: regress to the energy-preserving target (True) or to (1−β)x0 + βx_self.
        renorm_scope: ``"sample"`` or ``"token"`` (:func:`renormalized_target`).
        se_scale: the scale of the self-evaluation feedback Δ (1).
        lambda_clamp: clamp λ to at most this (None: no clamp).
        renoise_eps: ``"fresh"`` (a new ε′ for x̂s) or ``"shared"`` (ε′ = ε).
        cond_branch: the conditional evaluator pass on the ``"ema"`` model or the
            ``"online"`` one; the unconditional one is always online.
        aux: the auxiliary fake-score term (App. S.1.2), on from ``aux_start``.
        aux_k: k, the classifier-score share of Δ with the term on (0.9).
        aux_start: the share of training after which the term is on (0; the paper switches
            it on at 550k of 710k iterations).
        fake_weight: the weight of the fake-score regression (1).

    Components (detached, means over the batch): ``"data"`` w‖x̂0 − x0‖² (for Self-E too,
    the data part alone), ``"self_eval"`` w β ‖x̂0 − x_self‖² (Self-E), ``"aux_fake"`` the
    weighted fake-score regression (when on). Squared norms are means over elements.
    """

    who = _WHO

    def __init__(
        self,
        mode: str = "self_e",
        *,
        t_min: float = 0.05,
        mu: float = 0.0,
        s_equal_prob: float = 0.5,
        anneal_fraction: float = 0.4,
        renorm: bool = True,
        renorm_scope: str = "sample",
        se_scale: float = 1.0,
        lambda_clamp: float | None = None,
        renoise_eps: str = "fresh",
        cond_branch: str = "ema",
        aux: bool = False,
        aux_k: float = 0.9,
        aux_start: float = 0.0,
        fake_weight: float = 1.0,
    ) -> None:
        super().__init__()
        who = self.who
        self.mode = check_choice(mode, MODES, "mode", who)
        self.t_min = check_positive(t_min, "t_min", who)
        if self.t_min > 1:
            raise ValueError(f"{who}: t_min must lie in (0, 1], got {self.t_min}")
        self.mu = check_number(mu, "mu", who)
        self.s_equal_prob = check_fraction(s_equal_prob, "s_equal_prob", who)
        self.anneal_fraction = check_fraction(anneal_fraction, "anneal_fraction", who)
        for name, flag in (("renorm", renorm), ("aux", aux)):
            if not isinstance(flag, bool):
                raise ValueError(f"{who}: {name} must be a bool (True or False), got {flag!r}")
        self.renorm, self.aux = renorm, aux
        self.renorm_scope = check_choice(renorm_scope, ("sample", "token"), "renorm_scope", who)
        self.se_scale = check_non_negative(se_scale, "se_scale", who)
        self.lambda_clamp = (
            None if lambda_clamp is None else check_positive(lambda_clamp, "lambda_clamp", who)
        )
        self.renoise_eps = check_choice(renoise_eps, ("fresh", "shared"), "renoise_eps", who)
        self.cond_branch = check_choice(cond_branch, ("ema", "online"), "cond_branch", who)
        self.aux_k = check_fraction(aux_k, "aux_k", who)
        self.aux_start = check_fraction(aux_start, "aux_start", who)
        self.fake_weight = check_non_negative(fake_weight, "fake_weight", who)

    def extra_repr(self) -> str:
        return (
            f"mode={self.mode!r}, t_min={self.t_min}, renorm={self.renorm}, "
            f"cond_branch={self.cond_branch!r}, aux={self.aux}"
        )

    def aux_on(self, progress: float) -> bool:
        """Whether the auxiliary fake-score term is on at ``progress``."""
        return self.mode == "self_e" and self.aux and progress >= self.aux_start

    def weight(self, t: Tensor) -> Tensor:
        """w = 1/max(t, t_min)² (eq. 21), (N,)."""
        return _up(t).clamp_min(self.t_min).square().reciprocal()

    def draw(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        progress: float = 0.0,
        device: torch.device | str | None = None,
    ) -> tuple[Tensor, Tensor]:
        """The times ``(t, s)`` (n,) of one call: :func:`draw_times` at τ(progress); s = t
        for flow matching (the s-coin and U are still drawn, so both modes see the same t)."""
        tau = tau_at(progress, self.anneal_fraction)
        t, s = draw_times(
            n,
            generator=generator,
            mu=self.mu,
            s_equal_prob=self.s_equal_prob,
            tau=tau,
            device=device,
        )
        return (t, t.clone()) if self.mode == "flow_matching" else (t, s)

    def forward(
        self,
        model: nn.Module,
        x0: Tensor,
        cond: Tensor,
        null_cond: Tensor,
        *,
        generator: torch.Generator | None = None,
        progress: float = 0.0,
        ema_model: nn.Module | None = None,
        fake_cond: Tensor | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """One draw of times and noise from ``generator`` (t and s, then ε, then ε′), then
        :meth:`loss_at`.

        Args:
            model: the online denoiser ``model(x_t, t, s, cond) -> V``.
            x0: clean data (N, ...).
            cond: the prompts' encodings (N, ...), dropped rows already set to the null one.
            null_cond: the null prompt's encoding, (N, ...) or (1, ...).
            generator: the only source of randomness.
            progress: the share of training done, in [0, 1] (τ's anneal, the aux start).
            ema_model: the EMA copy of ``model`` (the conditional evaluator branch).
            fake_cond: the "fake image" + prompt encodings (N, ...), for the aux term.

        Returns:
            ``(total, components)``: the 0-dim loss and its detached terms.
        """
        x0 = self._check_x0(x0)
        progress = check_fraction(progress, "progress", self.who)
        t, s = self.draw(x0.shape[0], generator=generator, progress=progress, device=x0.device)
        eps = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        eps_prime = None
        if self.mode == "self_e" and self.renoise_eps == "fresh":
            eps_prime = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        return self.loss_at(
            model,
            x0,
            cond,
            null_cond,
            t,
            s,
            eps,
            eps_prime=eps_prime,
            progress=progress,
            ema_model=ema_model,
            fake_cond=fake_cond,
        )

    def _check_x0(self, x0: Any) -> Tensor:
        if not isinstance(x0, Tensor) or not x0.is_floating_point() or x0.dim() < 2:
            got = tuple(x0.shape) if isinstance(x0, Tensor) else type(x0).__name__
            raise ValueError(f"{self.who}: x0 must be clean float data (N, ...), got {got}")
        return _check_tensor(x0, "x0", self.who)

    def loss_at(
        self,
        model: nn.Module,
        x0: Tensor,
        cond: Tensor,
        null_cond: Tensor,
        t: Tensor,
        s: Tensor,
        eps: Tensor,
        *,
        eps_prime: Tensor | None = None,
        progress: float = 0.0,
        ema_model: nn.Module | None = None,
        fake_cond: Tensor | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """The loss at given times ``t``, ``s`` (N,) and noise ``eps`` (like ``x0``);
        ``eps_prime`` is the re-noising noise (default: ``eps``, i.e. ``renoise_eps =
        "shared"``). Flow matching ignores ``s``, ``eps_prime``, ``ema_model``."""
        who = self.who
        x0 = self._check_x0(x0)
        n = x0.shape[0]
        if not isinstance(model, nn.Module):
            raise ValueError(f"{who}: model must be an nn.Module, got {type(model).__name__}")
        eps = _check_tensor(eps, "eps", who)
        if eps.shape != x0.shape:
            raise ValueError(f"{who}: eps {tuple(eps.shape)} must be shaped like x0")
        t, s = _times(t, s, who)
        if t.shape != (n,):
            raise ValueError(f"{who}: t and s must be (N,) = ({n},), got {tuple(t.shape)}")
        t, s = t.to(x0.device), s.to(x0.device)
        cond = _check_cond(cond, "cond", n, None, who)
        null_cond = _check_cond(null_cond, "null_cond", n, tuple(cond.shape[1:]), who)
        progress = check_fraction(progress, "progress", who)
        aux = self.aux_on(progress)
        if fake_cond is not None and not (self.mode == "self_e" and self.aux):
            raise ValueError(
                f"{who}: fake_cond is used only by the auxiliary term; set aux=True or drop it"
            )
        if aux and fake_cond is None:
            raise ValueError(
                f"{who}: aux=True needs fake_cond= (the 'fake image' + prompt encodings)"
            )
        if aux:
            fake_cond = _check_cond(fake_cond, "fake_cond", n, tuple(cond.shape[1:]), who)
        if self.mode == "flow_matching":
            s = t
        else:
            if self.cond_branch == "ema" and ema_model is None:
                raise ValueError(
                    f"{who}: cond_branch='ema' needs ema_model= (the EMA copy of the model), "
                    "or set cond_branch='online'"
                )
            if eps_prime is None:
                eps_prime = eps
            eps_prime = _check_tensor(eps_prime, "eps_prime", who)
            if eps_prime.shape != x0.shape:
                raise ValueError(f"{who}: eps_prime {tuple(eps_prime.shape)} must be like x0")

        tv = _view(t, x0).to(x0.dtype)
        x_t = (1 - tv) * x0 + tv * eps
        v = _check_out(model(x_t, t, s, cond), x_t, who)
        x_hat0 = _clean(v, x_t, t)
        x0u = _up(x0)
        w = self.weight(t)
        data = _per_row((x_hat0 - x0u).square())
        components = {"data": (w * data).mean().detach()}
        if self.mode == "flow_matching":
            return (w * data).mean(), components

        beta = merge_beta(t, s, lambda_clamp=self.lambda_clamp)
        x_self = x_hat0.detach().clone()
        rows = s < t
        any_rows = bool(rows.any())
        if any_rows:
            x_self[rows] = self_evaluation(
                model,
                x_hat0[rows],
                s[rows],
                eps_prime[rows],
                cond[rows],
                null_cond[rows],
                cond_model=ema_model if self.cond_branch == "ema" else model,
                fake_cond=fake_cond[rows] if aux else None,
                k=self.aux_k,
                se_scale=self.se_scale,
            )[0]
        if self.renorm:
            target = renormalized_target(x0u, x_self, beta, self.renorm_scope)
        else:
            b = _view(beta, x0u).to(x0u.dtype)
            target = torch.where(b == 0, x0u, (1 - b) * x0u + b * x_self)
        total = (w * _per_row((x_hat0 - target).square())).mean()
        components["self_eval"] = (
            w * beta.to(w.dtype) * _per_row((x_hat0.detach() - x_self).square())
        ).mean()
        if aux:
            sv = _view(s, x0u).to(x0u.dtype)
            x_s = ((1 - sv) * x_hat0.detach() + sv * _up(eps_prime)).to(x0.dtype)
            v_fake = _check_out(model(x_s, s, s, fake_cond), x_s, who)
            fake = _per_row((_clean(v_fake, x_s, s) - x_hat0.detach()).square()).mean()
            components["aux_fake"] = (self.fake_weight * fake).detach()
            total = total + self.fake_weight * fake
        return total, components
