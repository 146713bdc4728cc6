"""Samplers for the networks the objectives of :mod:`manyview_diffusion.objectives` train:
from Gaussian noise of a given shape to the model's estimate of clean data x0.

- :func:`ddim_sample`: DDIM (Song et al., "Denoising Diffusion Implicit Models", ICLR 2021)
  for an ε-prediction network (:class:`~manyview_diffusion.objectives.DDPMLoss`), stepped
  by diffusers' ``DDIMScheduler`` built from the training ``DDPMScheduler``'s config.
- :func:`edm_sample`: EDM's deterministic 2nd-order Heun sampler (Karras et al.,
  "Elucidating the Design Space of Diffusion-Based Generative Models", NeurIPS 2022,
  Algorithm 1 with S_churn = 0; ``NVlabs/edm``, ``generate.py``, ``edm_sampler``) for a
  denoiser D(x; σ) (:meth:`~manyview_diffusion.objectives.EDMLoss.denoise`).
- :func:`flow_sample`: Euler integration of the rectified-flow ODE dx/dt = v(x, t) from
  t = 1 (noise) to t = 0 (Liu et al., "Flow Straight and Fast", ICLR 2023) for a velocity
  network (:class:`~manyview_diffusion.objectives.FlowMatchingLoss`).
- :func:`sample`: one of the three, picked by the objective the network was trained with.

Every sampler takes any number of steps >= 1, runs without gradients, draws its noise
from ``generator`` only (the same generator state gives the same images), and returns the
x0 estimate clipped to [-1, 1] (the range the objectives train on) as its final step, of
``shape`` (N, C, H, W) or any (N, ...). Network evaluations: ``steps`` for DDIM and flow,
``2 * steps - 1`` for EDM's Heun sampler (its last step, to σ = 0, is an Euler step).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from manyview import did_you_mean
from manyview.options import check_choice, check_int, check_non_negative, check_positive
from manyview_diffusion.objectives import (
    DDPMLoss,
    EDMLoss,
    FlowMatchingLoss,
    Network,
    _prediction,
)

__all__ = ["SAMPLERS", "ddim_sample", "edm_sample", "flow_sample", "sample"]

Denoiser = Callable[[Tensor, Tensor], Tensor]
"""``D(x, sigma) -> x0 estimate`` for ``x`` (N, ...) and per-sample noise levels (N,)."""

SAMPLERS: dict[str, tuple[str, ...]] = {
    "DDPMLoss": ("ddim",),
    "EDMLoss": ("heun",),
    "FlowMatchingLoss": ("euler",),
}
"""The samplers :func:`sample` offers per objective class; the first is the default."""


def _check_shape(shape: Any, who: str) -> tuple[int, ...]:
    """``shape`` as a tuple of at least two positive ints (N, ...), else a one-line error."""
    ok = (
        isinstance(shape, Sequence | torch.Size)
        and not isinstance(shape, str)
        and len(shape) >= 2
        and all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in shape)
    )
    if not ok:
        raise ValueError(
            f"{who}: shape must be a tuple of at least two positive ints (N, C, H, W), "
            f"got {shape!r}"
        )
    return tuple(int(n) for n in shape)


def _device(network: Any, device: torch.device | str | None) -> torch.device:
    """``device``; else that of an ``nn.Module`` network's first parameter; else the CPU."""
    if device is not None:
        return torch.device(device)
    if isinstance(network, nn.Module):
        for p in network.parameters():
            return p.device
    return torch.device("cpu")


def _noise(
    shape: tuple[int, ...],
    generator: torch.Generator | None,
    device: torch.device,
    dtype: torch.dtype,
) -> Tensor:
    """Unit Gaussian noise of ``shape`` drawn on the generator's device, then moved (a CPU
    generator then gives the same noise on every device)."""
    where = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, device=where, dtype=dtype).to(device)


def _check_generator(generator: Any, who: str) -> torch.Generator | None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(
            f"{who}: generator must be a torch.Generator or None, got {type(generator).__name__}"
        )
    return generator


def _finish(x0: Tensor, dtype: torch.dtype) -> Tensor:
    """The final step: the x0 estimate clipped to the training range [-1, 1], in ``dtype``."""
    return x0.clamp(-1.0, 1.0).to(dtype)


@torch.no_grad()
def ddim_sample(
    network: Network,
    shape: Sequence[int],
    *,
    scheduler: Any,
    steps: int,
    generator: torch.Generator | None = None,
    eta: float = 0.0,
    timestep_spacing: str = "trailing",
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """DDIM sampling of an ε-prediction network (Song et al., ICLR 2021, Eq. 12).

    diffusers' ``DDIMScheduler.from_config(scheduler.config)`` does the steps (its
    ``set_timesteps`` and ``step``; ``clip_sample`` and the β schedule are the training
    scheduler's). The result is the last step's x0 prediction
    (``pred_original_sample``), clipped to [-1, 1].

    Args:
        network: ``network(x_t, timesteps) -> ε`` for x_t of ``shape`` and integer
            timesteps (N,) (a tensor, or a diffusers output with ``.sample``;
            :func:`~manyview_diffusion.objectives.network_call` wraps a diffusers model).
        shape: the images' shape (N, C, H, W) (or any (N, ...)).
        scheduler: the training ``DDPMScheduler`` (``DDPMLoss.scheduler``).
        steps: network evaluations, 1 to ``num_train_timesteps``.
        generator: the source of the initial noise and, for ``eta > 0``, of each step's.
        eta: DDIM's η: 0 is the deterministic DDIM, 1 DDPM's posterior variance.
        timestep_spacing: diffusers' ``"trailing"`` (default: the first step is at
            t = T − 1, the level of the pure noise it starts from; Lin et al., "Common
            Diffusion Noise Schedules and Sample Steps are Flawed", WACV 2024, Table 2),
            ``"leading"`` or ``"linspace"``.
        device: where to sample (default: that of an ``nn.Module`` network, else the CPU).
        dtype: of the noise, the network's inputs and the result.

    Returns:
        The x0 estimate (``shape``), in [-1, 1].
    """
    from diffusers import DDIMScheduler

    who = "ddim_sample"
    shape = _check_shape(shape, who)
    steps = check_int(steps, "steps", who)
    eta = check_non_negative(eta, "eta", who)
    generator = _check_generator(generator, who)
    timestep_spacing = check_choice(
        timestep_spacing, ("trailing", "leading", "linspace"), "timestep_spacing", who
    )
    config = getattr(scheduler, "config", None)
    if config is None or "num_train_timesteps" not in config:
        raise ValueError(
            f"{who}: scheduler must be the diffusers DDPMScheduler the network was trained "
            f"with (DDPMLoss.scheduler), got {type(scheduler).__name__}"
        )
    if steps > config.num_train_timesteps:
        raise ValueError(
            f"{who}: steps must be at most the scheduler's num_train_timesteps "
            f"({config.num_train_timesteps}), got {steps}"
        )
    ddim = DDIMScheduler.from_config(config, timestep_spacing=timestep_spacing)
    device = _device(network, device)
    ddim.set_timesteps(steps, device=device)
    x = _noise(shape, generator, device, dtype) * ddim.init_noise_sigma
    x0 = x
    for t in ddim.timesteps:
        timesteps = torch.full((shape[0],), int(t), device=device, dtype=torch.long)
        eps = _prediction(network(x, timesteps), x)
        out = ddim.step(eps, t, x, eta=eta, generator=generator)
        x, x0 = out.prev_sample.to(dtype), out.pred_original_sample
    return _finish(x0, dtype)


def _edm_sigmas(
    steps: int, sigma_min: float, sigma_max: float, rho: float, device: torch.device
) -> Tensor:
    """EDM's time grid (Karras et al. 2022, Eq. 5), float64, with σ_N = 0 appended:
    (σ_max^(1/ρ) + i/(N−1) (σ_min^(1/ρ) − σ_max^(1/ρ)))^ρ for i < N; one step is [σ_max, 0]."""
    i = torch.arange(steps, dtype=torch.float64, device=device)
    frac = i / (steps - 1) if steps > 1 else torch.zeros_like(i)
    grid = (
        sigma_max ** (1 / rho) + frac * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))
    ) ** rho
    return torch.cat([grid, torch.zeros_like(grid[:1])])


@torch.no_grad()
def edm_sample(
    denoise: Denoiser,
    shape: Sequence[int],
    *,
    steps: int,
    sigma_min: float = 0.002,
    sigma_max: float = 80.0,
    rho: float = 7.0,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """EDM's deterministic Heun sampler (Karras et al. 2022, Algorithm 1, S_churn = 0, as
    ``NVlabs/edm``, ``generate.py``, ``edm_sampler``).

    x_0 = σ_0 n; for each step i, d = (x_i − D(x_i; σ_i))/σ_i and
    x_{i+1} = x_i + (σ_{i+1} − σ_i) d, corrected by the mean of d and the slope at x_{i+1}
    (Heun) except on the last step, an Euler step to σ = 0. The state is float64, as in
    ``NVlabs/edm``; ``denoise`` gets it in ``dtype``.

    Args:
        denoise: ``denoise(x, sigma) -> D(x; σ)`` for x of ``shape`` and per-sample σ (N,),
            e.g. ``lambda x, s: edm_loss.denoise(network_call(unet), x, s)``.
        shape: the images' shape (N, C, H, W) (or any (N, ...)).
        steps: the grid's N >= 1 noise levels above 0 (2N − 1 evaluations of ``denoise``).
        sigma_min, sigma_max, rho: the grid's (EDM's defaults 0.002, 80, 7).
        generator: the source of the initial noise.
        device: where to sample (default: that of an ``nn.Module`` denoiser, else the CPU).
        dtype: of the noise and of ``denoise``'s inputs, and of the result.

    Returns:
        The x0 estimate (``shape``), in [-1, 1].
    """
    who = "edm_sample"
    shape = _check_shape(shape, who)
    steps = check_int(steps, "steps", who)
    sigma_min = check_positive(sigma_min, "sigma_min", who)
    sigma_max = check_positive(sigma_max, "sigma_max", who)
    rho = check_positive(rho, "rho", who)
    generator = _check_generator(generator, who)
    if sigma_min >= sigma_max:
        raise ValueError(f"{who}: sigma_min ({sigma_min}) must be below sigma_max ({sigma_max})")
    device = _device(denoise, device)
    sigmas = _edm_sigmas(steps, sigma_min, sigma_max, rho, device)
    n = shape[0]

    def slope(x: Tensor, sigma: Tensor) -> Tensor:
        d = _prediction(denoise(x.to(dtype), sigma.to(dtype).expand(n)), x)
        return (x - d.to(torch.float64)) / sigma

    x = _noise(shape, generator, device, dtype).to(torch.float64) * sigmas[0]
    for i in range(steps):
        s_cur, s_next = sigmas[i], sigmas[i + 1]
        d_cur = slope(x, s_cur)
        x_next = x + (s_next - s_cur) * d_cur
        if i < steps - 1:  # Heun's correction; the last step, to sigma = 0, stays Euler
            x_next = x + (s_next - s_cur) * (0.5 * d_cur + 0.5 * slope(x_next, s_next))
        x = x_next
    return _finish(x, dtype)


@torch.no_grad()
def flow_sample(
    network: Network,
    shape: Sequence[int],
    *,
    steps: int,
    timestep_scale: float = 1000.0,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Euler integration of the rectified-flow ODE dx/dt = v(x, t) from t = 1 to t = 0 on
    the uniform grid t_i = 1 − i/K (Liu et al., ICLR 2023): x ← x + (t_{i+1} − t_i) v.

    ``v`` is the velocity :class:`~manyview_diffusion.objectives.FlowMatchingLoss` trains,
    ε − x0 along x_t = (1 − t) x0 + t ε. Written here rather than with diffusers'
    ``FlowMatchEulerDiscreteScheduler``, whose grid ends at σ = 1/T before its jump to 0.
    The state is at least float32.

    Args:
        network: ``network(x_t, timestep_scale * t) -> v`` for x_t of ``shape`` and
            per-sample times (N,) (a tensor, or a diffusers output with ``.sample``).
        shape: the images' shape (N, C, H, W) (or any (N, ...)).
        steps: network evaluations K >= 1.
        timestep_scale: what t is multiplied by for the network (the objective's).
        generator: the source of the initial noise.
        device: where to sample (default: that of an ``nn.Module`` network, else the CPU).
        dtype: of the noise, the network's inputs and the result.

    Returns:
        The x0 estimate (``shape``), in [-1, 1].
    """
    who = "flow_sample"
    shape = _check_shape(shape, who)
    steps = check_int(steps, "steps", who)
    timestep_scale = check_positive(timestep_scale, "timestep_scale", who)
    generator = _check_generator(generator, who)
    device = _device(network, device)
    state = torch.promote_types(dtype, torch.float32)
    ts = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64, device=device)
    x = _noise(shape, generator, device, dtype).to(state)
    for i in range(steps):
        t = ts[i].to(dtype).expand(shape[0])
        v = _prediction(network(x.to(dtype), t * timestep_scale), x)
        x = x + float(ts[i + 1] - ts[i]) * v.to(state)
    return _finish(x, dtype)


def sample(
    objective: DDPMLoss | EDMLoss | FlowMatchingLoss,
    network: Network,
    shape: Sequence[int],
    *,
    steps: int,
    generator: torch.Generator | None = None,
    sampler: str | None = None,
    **kw: Any,
) -> Tensor:
    """Sample the ``network`` trained with ``objective`` with that objective's sampler.

    - :class:`~manyview_diffusion.objectives.DDPMLoss`: ``"ddim"`` (:func:`ddim_sample`
      with the objective's scheduler);
    - :class:`~manyview_diffusion.objectives.EDMLoss`: ``"heun"`` (:func:`edm_sample` of
      ``objective.denoise(network, x, sigma)``, EDM's preconditioning);
    - :class:`~manyview_diffusion.objectives.FlowMatchingLoss`: ``"euler"``
      (:func:`flow_sample` with the objective's ``timestep_scale``).

    Args:
        objective: the objective module the network was trained with.
        network: the network as the objective was called with it, ``(x_t, t) -> prediction``.
        shape: the images' shape (N, C, H, W) (or any (N, ...)).
        steps: the sampler's steps (>= 1).
        generator: the source of all its noise.
        sampler: one of :data:`SAMPLERS` for the objective (default: its first).
        kw: further options of that sampler (``eta=``, ``sigma_max=``, ``device=``, ...).

    Returns:
        The x0 estimate (``shape``), clipped to [-1, 1].
    """
    who = "sample"
    kind = type(objective).__name__
    if not isinstance(objective, DDPMLoss | EDMLoss | FlowMatchingLoss):
        raise ValueError(
            f"{who}: objective must be a DDPMLoss, EDMLoss or FlowMatchingLoss module (the "
            f"one the network was trained with), got {kind}"
        )
    choices = SAMPLERS[next(c.__name__ for c in type(objective).__mro__ if c.__name__ in SAMPLERS)]
    sampler = check_choice(choices[0] if sampler is None else sampler, choices, "sampler", who)
    target = {"ddim": ddim_sample, "heun": edm_sample, "euler": flow_sample}[sampler]
    fixed = {"scheduler", "timestep_scale"}  # the objective's own
    named = {*fixed, "steps", "generator"}  # steps and generator are sample's own arguments
    allowed = [p for p in list(inspect.signature(target).parameters)[2:] if p not in named]
    for key in kw:
        if key in fixed:
            raise ValueError(
                f"{who}: {key!r} is taken from the {kind} objective and cannot be given here "
                f"(its sampler {sampler!r} takes: {', '.join(allowed)})"
            )
        if key not in allowed:
            raise ValueError(
                f"{who}: {key!r} is not an option of the {kind} sampler {sampler!r}"
                f"{did_you_mean(key, allowed)} (its options: {', '.join(allowed)})"
            )
    if isinstance(objective, DDPMLoss):
        return ddim_sample(
            network, shape, scheduler=objective.scheduler, steps=steps, generator=generator, **kw
        )
    if isinstance(objective, EDMLoss):

        def denoise(x: Tensor, sigma: Tensor) -> Tensor:
            return objective.denoise(network, x, sigma)

        kw.setdefault("device", _device(network, None))
        return edm_sample(denoise, shape, steps=steps, generator=generator, **kw)
    return flow_sample(
        network,
        shape,
        steps=steps,
        timestep_scale=objective.timestep_scale,
        generator=generator,
        **kw,
    )
