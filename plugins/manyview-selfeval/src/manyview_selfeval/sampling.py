"""Any-step samplers of a dual-time denoiser ``model(x_t, t, s, cond) -> V``
(:mod:`manyview_selfeval.denoisers`): from Gaussian noise at t = 1 to the x0 estimate at
t = 0 in any number of steps K >= 1 (Yu et al., "Self-Evaluation Unlocks Any-Step
Text-to-Image Generation", arXiv 2512.22374, eq. 22 and Section 4; the reference sampler
of the same group is ``Totoro97/minFM``, ``utils_fm/sampler.py``, ``FlowSampler``).

The time grid (:func:`time_grid`): t_k = 1 − k/K for k = 0..K, optionally shifted,
t ↦ e^μ/(e^μ + 1/t − 1) (μ = ``shift``; 0 leaves the grid as it is). At step k the model
is evaluated at (x_k, t_k, s_k), the landing time s_k by ``s_policy``
(:func:`landing_times`):

- ``"next"``: s_k = t_{k+1}, Self-E's (the model is asked for the jump it is about to make);
- ``"same"``: s_k = t_k, plain flow matching (an ``s``-blind network sees the same thing);
- ``"mid"``: s_k = (t_k + t_{k+1})/2.

The step (``sampler``), with α = 1 − t, β = t and primes for t_{k+1}:

- ``"euler"`` (eq. 22): x_{k+1} = x_k − (t_k − t_{k+1}) V(x_k, t_k, s_k, c);
- ``"ddim_sde"`` (minFM's ``FlowSampler`` ``"ddim"``, a predictor-corrector step):
  x0 = x − βV, ε = x + αV, β_sde = max(β′ − η(β − β′)β′/β, 0) and
  x_{k+1} = α′x0 + β_sde ε + √(β′² − β_sde²) n with n ~ N(0, I) from ``generator``. η = 0
  is deterministic DDIM; η = 1 (Self-E's setting) re-draws part of the noise each step.
  The last step lands on t_K = 0, where α′ = 1 and β′ = β_sde = 0: it returns x0.

Guidance (``guidance``) combines the conditional velocity ``pos = V(·, cond)`` and the
unconditional one ``neg = V(·, null_cond)``, two model calls a step, with ω = ``scale``:

- ``"none"``: pos (one call a step; ``null_cond`` is not used);
- ``"cfg"``: pos + (ω − 1)(pos − neg) (= neg + ω(pos − neg), classifier-free guidance, Ho &
  Salimans 2022);
- ``"ep_cfg"`` (Self-E's default, ω = 5): that, rescaled per sample to the energy of pos
  (:func:`energy_preserving_cfg`; Zhang et al., "EP-CFG: Energy-Preserving
  Classifier-Free Guidance", arXiv 2412.09966; minFM's ``energy_preserve_cfg``).

ω = 1 returns pos exactly. The samplers run without gradients and do not change the
model's train/eval mode; every random number comes from ``generator`` (the same generator
state gives the same samples).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from manyview.options import (
    check_choice,
    check_int,
    check_non_negative,
    check_number,
    check_positive,
)

__all__ = [
    "GUIDANCES",
    "SAMPLERS",
    "S_POLICIES",
    "energy_preserving_cfg",
    "landing_times",
    "sample",
    "time_grid",
]

SAMPLERS: tuple[str, ...] = ("ddim_sde", "euler")
"""The steps :func:`sample` takes (module docstring); the first is Self-E's."""

S_POLICIES: tuple[str, ...] = ("next", "same", "mid")
"""How :func:`sample` picks the landing time s_k; ``"next"`` is Self-E's."""

GUIDANCES: tuple[str, ...] = ("ep_cfg", "cfg", "none")
"""How :func:`sample` combines the conditional and unconditional velocities."""

Denoiser = Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]
"""``model(x_t, t, s, cond) -> V`` (:mod:`manyview_selfeval.denoisers`)."""


def time_grid(steps: int, shift: float = 0.0) -> Tensor:
    """The K + 1 times t_k = 1 − k/K, k = 0..K, from 1 (noise) to 0 (data), float64.

    With ``shift`` = μ ≠ 0 each is mapped to e^μ t/(e^μ t + 1 − t) (= e^μ/(e^μ + 1/t − 1),
    the resolution-dependent shift of Esser et al., "Scaling Rectified Flow Transformers",
    ICML 2024, as minFM's ``TimeWarper``): μ > 0 spends more steps near the noise. The ends
    stay 1 and 0.

    Raises:
        ValueError: one line, for ``steps`` not an int >= 1 or a non-finite ``shift``.
    """
    who = "time_grid"
    steps = check_int(steps, "steps", who)
    shift = check_number(shift, "shift", who)
    t = 1.0 - torch.arange(steps + 1, dtype=torch.float64) / steps
    if shift != 0.0:
        e = math.exp(shift)
        t = e * t / (e * t + (1.0 - t))
    return t


def landing_times(grid: Tensor, s_policy: str = "next") -> Tensor:
    """The landing times s_k (K,) of a time grid t_0 > ... > t_K (K + 1,) by ``s_policy``:
    ``"next"`` t_{k+1}, ``"same"`` t_k, ``"mid"`` (t_k + t_{k+1})/2; always s_k <= t_k."""
    s_policy = check_choice(s_policy, S_POLICIES, "s_policy", "landing_times")
    if not isinstance(grid, Tensor) or grid.dim() != 1 or grid.numel() < 2:
        raise ValueError(
            f"landing_times: grid must be a 1-D tensor of K + 1 >= 2 times, got "
            f"{tuple(grid.shape) if isinstance(grid, Tensor) else type(grid).__name__}"
        )
    if s_policy == "next":
        return grid[1:].clone()
    if s_policy == "same":
        return grid[:-1].clone()
    return (grid[:-1] + grid[1:]) / 2


def _check_scale(scale: Any, who: str) -> float:
    scale = check_number(scale, "scale", who)
    if scale < 1.0:
        raise ValueError(
            f"{who}: scale (the guidance weight ω) must be >= 1 (1 is no guidance, Self-E "
            f"uses 5), got {scale:g}"
        )
    return scale


def energy_preserving_cfg(pos: Tensor, neg: Tensor, scale: float) -> Tensor:
    """Energy-preserving classifier-free guidance (Zhang et al., arXiv 2412.09966; minFM's
    ``energy_preserve_cfg``).

    g = pos + (ω − 1)(pos − neg), rescaled per sample by √(Σ pos² / Σ g²) (sums over all
    but the batch axis, accumulated in at least float32), so that ‖out_i‖ = ‖pos_i‖. A
    sample whose g is all zero is returned as g (0). ω = 1 returns ``pos`` itself.

    Args:
        pos: the conditional velocity (N, ...).
        neg: the unconditional velocity, ``pos``'s shape.
        scale: ω >= 1.

    Returns:
        The guided velocity, ``pos``'s shape and dtype.
    """
    who = "energy_preserving_cfg"
    scale = _check_scale(scale, who)
    if not isinstance(pos, Tensor) or not isinstance(neg, Tensor) or pos.dim() < 2:
        raise ValueError(
            f"{who}: pos and neg must be tensors (N, ...) of one shape, got "
            f"{tuple(pos.shape) if isinstance(pos, Tensor) else type(pos).__name__} and "
            f"{tuple(neg.shape) if isinstance(neg, Tensor) else type(neg).__name__}"
        )
    if pos.shape != neg.shape:
        raise ValueError(
            f"{who}: pos {tuple(pos.shape)} and neg {tuple(neg.shape)} must have one shape"
        )
    if scale == 1.0:
        return pos
    acc = torch.promote_types(pos.dtype, torch.float32)
    p = pos.to(acc)
    g = p + (scale - 1.0) * (p - neg.to(acc))
    dims = tuple(range(1, pos.dim()))
    e_pos = p.square().sum(dim=dims, keepdim=True)
    e_g = g.square().sum(dim=dims, keepdim=True)
    factor = torch.where(e_g > 0, (e_pos / e_g.clamp_min(torch.finfo(acc).tiny)).sqrt(), 1.0)
    return (g * factor).to(pos.dtype)


def _guide(pos: Tensor, neg: Tensor, guidance: str, scale: float) -> Tensor:
    if guidance == "ep_cfg":
        return energy_preserving_cfg(pos, neg, scale)
    if scale == 1.0:
        return pos
    return pos + (scale - 1.0) * (pos - neg)


def _check_shape(shape: Any, who: str) -> tuple[int, ...]:
    ok = (
        isinstance(shape, Sequence | torch.Size)
        and not isinstance(shape, str)
        and len(shape) >= 2
        and all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in shape)
    )
    if not ok:
        raise ValueError(
            f"{who}: shape must be a tuple of at least two positive ints (N, ...), e.g. "
            f"(16, 1, 8, 8), got {shape!r}"
        )
    return tuple(int(n) for n in shape)


def _check_cond(cond: Any, name: str, n: int, device: torch.device, who: str) -> Tensor:
    """``cond`` (N, ...) or (1, ...) (broadcast), on ``device``."""
    if not isinstance(cond, Tensor) or cond.dim() < 2:
        got = tuple(cond.shape) if isinstance(cond, Tensor) else type(cond).__name__
        raise ValueError(
            f"{who}: {name} must be a tensor (N, D) or (N, L, D) (one row per sample, or one "
            f"row for all), got {got}"
        )
    if cond.shape[0] not in (1, n):
        raise ValueError(
            f"{who}: {name} has {cond.shape[0]} rows for {n} samples; give {n} rows or 1"
        )
    return cond.to(device).expand(n, *cond.shape[1:])


def _device(model: Any, device: torch.device | str | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    if isinstance(model, nn.Module):
        for p in model.parameters():
            return p.device
    return torch.device("cpu")


def _noise(
    shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device
) -> Tensor:
    """Float32 unit Gaussian noise drawn on the generator's device, then moved (a CPU
    generator gives the same noise on every device)."""
    where = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, device=where, dtype=torch.float32).to(device)


@torch.no_grad()
def sample(
    model: Denoiser,
    shape: Sequence[int],
    cond: Tensor,
    null_cond: Tensor | None = None,
    *,
    steps: int,
    sampler: str = "ddim_sde",
    eta: float = 1.0,
    s_policy: str = "next",
    guidance: str = "ep_cfg",
    scale: float = 5.0,
    shift: float = 0.0,
    generator: torch.Generator | None = None,
    clip: float | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Sample a dual-time denoiser in ``steps`` steps (module docstring): Self-E's sampler
    by default (DDIM-SDE, η = 1, s_k = t_{k+1}, EP-CFG ω = 5); ``sampler="euler",
    s_policy="same", guidance="none"`` is a plain flow-matching Euler sampler.

    Args:
        model: ``model(x_t, t, s, cond) -> V`` (e.g. a
            :class:`~manyview_selfeval.denoisers.DualTimeDenoiser`); called with ``x_t``
            (N, ...) in ``dtype`` and ``t``, ``s`` (N,) in float32 (float64 when ``dtype``
            is), the same values the steps use.
        shape: the samples' shape (N, ...), e.g. (16, 1, 8, 8).
        cond: the condition (N, D) or (N, L, D), or one row for every sample.
        null_cond: the null prompt's encoding, likewise; needed unless ``guidance="none"``.
        steps: K >= 1: model evaluations K (``guidance="none"``) or 2K.
        sampler: ``"ddim_sde"`` or ``"euler"``.
        eta: DDIM-SDE's η >= 0 (0 deterministic; unused by Euler).
        s_policy: ``"next"``, ``"same"`` or ``"mid"``.
        guidance: ``"ep_cfg"``, ``"cfg"`` or ``"none"``.
        scale: the guidance weight ω >= 1 (unused with ``guidance="none"``).
        shift: μ of the shifted time grid (:func:`time_grid`; 0: none).
        generator: the source of the initial noise and of DDIM-SDE's noise.
        clip: if given, the result is clamped to [−clip, clip] (1 for data in [−1, 1]).
        device: where to sample (default: that of an ``nn.Module`` model, else the CPU).
        dtype: of the model's sample input and of the result (the state is float32 or
            wider).

    Returns:
        The x0 estimate (``shape``).

    Raises:
        ValueError: one line, for K < 1, a bad shape or condition, an unknown option (with
            a did-you-mean), ``scale < 1``, a missing ``null_cond``, or a model output of
            another shape than ``x_t``.
    """
    who = "sample"
    shape = _check_shape(shape, who)
    steps = check_int(steps, "steps", who)
    sampler = check_choice(sampler, SAMPLERS, "sampler", who)
    s_policy = check_choice(s_policy, S_POLICIES, "s_policy", who)
    guidance = check_choice(guidance, GUIDANCES, "guidance", who)
    eta = check_non_negative(eta, "eta", who)
    if guidance != "none":
        scale = _check_scale(scale, who)
    if clip is not None:
        clip = check_positive(clip, "clip", who)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(
            f"{who}: generator must be a torch.Generator or None, got {type(generator).__name__}"
        )
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"{who}: dtype must be a floating torch.dtype, got {dtype!r}")
    if not callable(model):
        raise ValueError(
            f"{who}: model must be callable as model(x_t, t, s, cond) -> V, got "
            f"{type(model).__name__}"
        )
    device = _device(model, device)
    n = shape[0]
    cond = _check_cond(cond, "cond", n, device, who)
    if guidance != "none":
        if null_cond is None:
            raise ValueError(
                f"{who}: guidance {guidance!r} needs null_cond (the null prompt's encoding); "
                "pass it, or guidance='none'"
            )
        null_cond = _check_cond(null_cond, "null_cond", n, device, who)

    shift = check_number(shift, "shift", who)
    state = torch.promote_types(dtype, torch.float32)
    # the times the model is told, in the state's precision, are the ones the steps use
    times = time_grid(steps, shift)
    grid = times.to(state).tolist()
    landing = landing_times(times, s_policy).to(state).tolist()

    def call(x: Tensor, t: Tensor, s: Tensor, c: Tensor) -> Tensor:
        v = model(x.to(dtype), t, s, c)
        if not isinstance(v, Tensor) or v.shape != x.shape:
            got = tuple(v.shape) if isinstance(v, Tensor) else type(v).__name__
            raise ValueError(
                f"{who}: the model returned {got} for x_t of shape {tuple(x.shape)}; it must "
                "return V of x_t's shape (model(x_t, t, s, cond) -> V)"
            )
        return v.to(state)

    x = _noise(shape, generator, device).to(state)
    for k in range(steps):
        t, t_next, s = grid[k], grid[k + 1], landing[k]
        tt = torch.full((n,), t, device=device, dtype=state)
        ss = torch.full((n,), s, device=device, dtype=state)
        v = call(x, tt, ss, cond)
        if guidance != "none":
            v = _guide(v, call(x, tt, ss, null_cond), guidance, scale)
        if sampler == "euler":
            x = x - (t - t_next) * v
            continue
        alpha, beta = 1.0 - t, t
        alpha_next, beta_next = 1.0 - t_next, t_next
        x0, eps = x - beta * v, x + alpha * v
        if t_next == 0.0:  # the last step: alpha' = 1, beta' = beta_sde = 0, so x = x0
            x = x0
            continue
        beta_sde = max(beta_next - eta * (beta - beta_next) * beta_next / beta, 0.0)
        x = alpha_next * x0 + beta_sde * eps
        spread = math.sqrt(max(beta_next**2 - beta_sde**2, 0.0))
        if spread > 0.0:
            x = x + spread * _noise(shape, generator, device).to(state)
    if clip is not None:
        x = x.clamp(-clip, clip)
    return x.to(dtype)
