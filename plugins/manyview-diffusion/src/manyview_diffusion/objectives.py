"""Diffusion training objectives as recipe parts: each is an ``nn.Module`` called as
``loss(network, x0, generator=...)`` and returning the 0-dim mean loss.

``network`` is a callable ``(x_t, timesteps) -> prediction`` (a tensor, or a diffusers
output with ``.sample``; :func:`network_call` wraps a diffusers model with its extra
inputs). ``loss_at`` computes the same loss at given noise levels and noise, for tests and
for recipes that draw them themselves; ``inputs_at(x0, level, noise)`` gives the network's
inputs at one fixed noise level (a DDPM timestep, an EDM σ, a flow time), which is how DDAE
reads features, and ``default_feature_level`` the level it reads by default.

- :class:`DDPMLoss`: ε-prediction, E‖ε − ε_θ(√ᾱ_t x0 + √(1−ᾱ_t) ε, t)‖² with t ~ U{0..T−1}
  (Ho et al., "Denoising Diffusion Probabilistic Models", NeurIPS 2020; noise by diffusers
  ``DDPMScheduler.add_noise``).
- :class:`EDMLoss`: Karras et al., "Elucidating the Design Space of Diffusion-Based
  Generative Models", NeurIPS 2022 (``NVlabs/edm``, ``training/loss.py``, ``EDMLoss``;
  preconditioning of ``training/networks.py``, ``EDMPrecond``).
- :class:`FlowMatchingLoss`: rectified flow (Liu et al., "Flow Straight and Fast", ICLR
  2023; Lipman et al., "Flow Matching for Generative Modeling", ICLR 2023):
  x_t = (1−t) x0 + t ε, target ε − x0.

These are not registered as kind ``loss``: a manyview ``loss`` reads embeddings
(docs/architecture.md, "Loss inputs"), these read a network and clean inputs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from manyview.options import check_choice, check_fraction, check_int, check_positive
from manyview_diffusion.networks import ddpm_scheduler

__all__ = ["DDPMLoss", "EDMLoss", "FlowMatchingLoss", "edm_precondition", "network_call"]

Network = Callable[[Tensor, Tensor], Any]


def network_call(network: nn.Module, **inputs: Any) -> Network:
    """``(x_t, timesteps) -> prediction`` of a diffusers model, passing ``inputs`` (e.g.
    ``class_labels``, ``encoder_hidden_states``) and returning ``.sample``."""

    def call(x_t: Tensor, timesteps: Tensor) -> Any:
        return network(x_t, timesteps, **inputs)

    return call


def _prediction(out: Any, like: Tensor) -> Tensor:
    """The prediction tensor of a network output; a DiT that also predicts its variance
    (2·C output channels) is read at its first C channels."""
    pred = getattr(out, "sample", out)
    if isinstance(pred, tuple):
        pred = pred[0]
    if pred.dim() == 4 and pred.shape[1] == 2 * like.shape[1]:
        pred = pred[:, : like.shape[1]]
    if pred.shape != like.shape:
        raise ValueError(
            f"the network predicts {tuple(pred.shape)} for inputs {tuple(like.shape)}: its "
            "out_channels must equal in_channels (or twice it, a learned variance)"
        )
    return pred


def _up(x: Tensor) -> Tensor:
    """``x`` in at least float32 (a bf16 / fp16 difference is squared in float32)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _check_x0(x0: Any, who: str) -> Tensor:
    if not isinstance(x0, Tensor) or not x0.is_floating_point() or x0.dim() < 2:
        shape = tuple(x0.shape) if isinstance(x0, Tensor) else type(x0).__name__
        raise ValueError(f"{who}: expects clean float inputs (N, ...), got {shape}")
    return x0


class DDPMLoss(nn.Module):
    """DDPM's ε-prediction loss (the mean over elements and the batch).

    Args:
        num_train_timesteps, beta_start, beta_end, beta_schedule: the diffusers
            ``DDPMScheduler`` (defaults 1000, 1e-4, 0.02, linear: DDPM's and DDAE's).
    """

    who = "ddpm"

    def __init__(
        self,
        num_train_timesteps: int = 1000,
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
        beta_schedule: str = "linear",
    ) -> None:
        super().__init__()
        self.num_train_timesteps = check_int(num_train_timesteps, "num_train_timesteps", self.who)
        self.scheduler = ddpm_scheduler(
            self.num_train_timesteps, beta_start, beta_end, beta_schedule, self.who
        )

    default_feature_level: int = 11
    """DDAE's probe timestep on CIFAR-10 (11 of 1000)."""

    def check_level(self, level: Any) -> int:
        """``level`` as a timestep of the schedule, else a one-line ValueError."""
        if isinstance(level, float) and level.is_integer():
            level = int(level)
        if isinstance(level, bool) or not isinstance(level, int):
            raise ValueError(f"{self.who}: the noise level is a timestep (int), got {level!r}")
        if not 0 <= level < self.num_train_timesteps:
            raise ValueError(
                f"{self.who}: noise level {level} is outside the schedule's timesteps [0, "
                f"{self.num_train_timesteps - 1}]"
            )
        return level

    def inputs_at(self, x0: Tensor, level: Any, noise: Tensor) -> tuple[Tensor, Tensor]:
        """The network's inputs ``(x_t, timesteps)`` at one noise level for every sample
        (a DDPM timestep), with unit noise ``noise``: how DDAE reads features."""
        t = torch.full((x0.shape[0],), self.check_level(level), device=x0.device)
        return self.scheduler.add_noise(x0, noise, t), t

    def loss_at(self, network: Network, x0: Tensor, timesteps: Tensor, eps: Tensor) -> Tensor:
        """The loss at integer ``timesteps`` (N,) and noise ``eps`` (like ``x0``)."""
        x_t = self.scheduler.add_noise(x0, eps, timesteps)
        pred = _prediction(network(x_t, timesteps), x0)
        return (_up(pred) - _up(eps)).square().mean()

    def forward(
        self, network: Network, x0: Tensor, *, generator: torch.Generator | None = None
    ) -> Tensor:
        x0 = _check_x0(x0, self.who)
        t = torch.randint(
            0, self.num_train_timesteps, (x0.shape[0],), generator=generator, device=x0.device
        )
        eps = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        return self.loss_at(network, x0, t, eps)


def edm_precondition(sigma: Tensor, sigma_data: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """EDM's (c_skip, c_out, c_in, c_noise) for noise levels ``sigma``: σ_d²/(σ²+σ_d²),
    σσ_d/√(σ²+σ_d²), 1/√(σ²+σ_d²), ln(σ)/4 (Karras et al. 2022, Table 1)."""
    total = sigma.square() + sigma_data**2
    return sigma_data**2 / total, sigma * sigma_data / total.sqrt(), total.rsqrt(), sigma.log() / 4


class EDMLoss(nn.Module):
    """EDM's loss: E λ(σ) ‖D_θ(x0 + σn; σ) − x0‖² with D_θ(x; σ) = c_skip x + c_out
    F_θ(c_in x, c_noise), λ(σ) = (σ² + σ_d²)/(σ σ_d)², ln σ ~ N(P_mean, P_std²); the mean
    over elements and the batch (EDM's code sums; the mean only rescales the learning rate).

    Args:
        sigma_data (`float`, defaults to ``0.5``), p_mean (``-1.2``), p_std (``1.2``): EDM's.
    """

    who = "edm"

    def __init__(self, sigma_data: float = 0.5, p_mean: float = -1.2, p_std: float = 1.2) -> None:
        super().__init__()
        self.sigma_data = check_positive(sigma_data, "sigma_data", self.who)
        if (
            isinstance(p_mean, bool)
            or not isinstance(p_mean, int | float)
            or not math.isfinite(p_mean)
        ):
            raise ValueError(f"{self.who}: p_mean must be a finite number, got {p_mean!r}")
        self.p_mean = float(p_mean)
        self.p_std = check_positive(p_std, "p_std", self.who)

    default_feature_level: float = 0.06
    """σ of DDAE's EDM probe (index 4 of the 18-step grid on CIFAR-10: σ ≈ 0.060)."""

    def check_level(self, level: Any) -> float:
        """``level`` as a noise level σ > 0, else a one-line ValueError."""
        return check_positive(level, "noise level (sigma)", self.who)

    def inputs_at(self, x0: Tensor, level: Any, noise: Tensor) -> tuple[Tensor, Tensor]:
        """The network's inputs ``(c_in (x0 + σ n), c_noise)`` at one σ for every sample."""
        sigma = torch.full((x0.shape[0],), self.check_level(level), device=x0.device)
        _, _, c_in, c_noise = edm_precondition(sigma, self.sigma_data)
        shape = (-1,) + (1,) * (x0.dim() - 1)
        return c_in.view(shape).to(x0.dtype) * (x0 + sigma.view(shape) * noise), c_noise

    def denoise(self, network: Network, x: Tensor, sigma: Tensor) -> Tensor:
        """D_θ(x; σ) for per-sample ``sigma`` (N,)."""
        c_skip, c_out, c_in, c_noise = edm_precondition(sigma, self.sigma_data)
        shape = (-1,) + (1,) * (x.dim() - 1)
        f = _prediction(network(c_in.view(shape) * x, c_noise), x)
        return c_skip.view(shape) * x + c_out.view(shape) * f

    def loss_at(self, network: Network, x0: Tensor, sigma: Tensor, noise: Tensor) -> Tensor:
        """The loss at noise levels ``sigma`` (N,) and unit noise ``noise`` (like ``x0``)."""
        shape = (-1,) + (1,) * (x0.dim() - 1)
        d = self.denoise(network, x0 + sigma.view(shape) * noise, sigma)
        weight = (sigma.square() + self.sigma_data**2) / (sigma * self.sigma_data).square()
        return (weight.view(shape) * (_up(d) - _up(x0)).square()).mean()

    def forward(
        self, network: Network, x0: Tensor, *, generator: torch.Generator | None = None
    ) -> Tensor:
        x0 = _check_x0(x0, self.who)
        n = torch.randn(x0.shape[0], generator=generator, device=x0.device, dtype=x0.dtype)
        sigma = (n * self.p_std + self.p_mean).exp()
        noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        return self.loss_at(network, x0, sigma, noise)


class FlowMatchingLoss(nn.Module):
    """Rectified-flow velocity loss: x_t = (1−t) x0 + t ε, E‖v_θ(x_t, t) − (ε − x0)‖²
    (the mean over elements and the batch).

    Args:
        t_sampling (`str`, defaults to ``"uniform"``): t ~ U(0, 1), or ``"logit_normal"``
            (t = sigmoid(n), n ~ N(0, 1): Esser et al., "Scaling Rectified Flow
            Transformers", ICML 2024).
        timestep_scale (`float`, defaults to ``1000``): the network is given
            ``timestep_scale · t`` (diffusers' flow-matching models take t in [0, 1000]).
    """

    who = "flow_matching"

    def __init__(self, t_sampling: str = "uniform", timestep_scale: float = 1000.0) -> None:
        super().__init__()
        self.t_sampling = check_choice(
            t_sampling, ("uniform", "logit_normal"), "t_sampling", self.who
        )
        self.timestep_scale = check_positive(timestep_scale, "timestep_scale", self.who)

    default_feature_level: float = 0.02
    """A small t (little noise), the flow-matching counterpart of DDAE's timestep 11."""

    def check_level(self, level: Any) -> float:
        """``level`` as a time in [0, 1], else a one-line ValueError."""
        return check_fraction(level, "noise level (t)", self.who)

    def inputs_at(self, x0: Tensor, level: Any, noise: Tensor) -> tuple[Tensor, Tensor]:
        """The network's inputs ``((1 − t) x0 + t ε, timestep_scale · t)`` at one t."""
        t = self.check_level(level)
        timesteps = torch.full((x0.shape[0],), t * self.timestep_scale, device=x0.device)
        return (1 - t) * x0 + t * noise, timesteps

    def loss_at(self, network: Network, x0: Tensor, t: Tensor, eps: Tensor) -> Tensor:
        """The loss at times ``t`` (N,) in [0, 1] and noise ``eps`` (like ``x0``)."""
        shape = (-1,) + (1,) * (x0.dim() - 1)
        tt = t.view(shape).to(x0.dtype)
        x_t = (1 - tt) * x0 + tt * eps
        pred = _prediction(network(x_t, t * self.timestep_scale), x0)
        return (_up(pred) - _up(eps - x0)).square().mean()

    def forward(
        self, network: Network, x0: Tensor, *, generator: torch.Generator | None = None
    ) -> Tensor:
        x0 = _check_x0(x0, self.who)
        n = x0.shape[0]
        if self.t_sampling == "uniform":
            t = torch.rand(n, generator=generator, device=x0.device, dtype=x0.dtype)
        else:
            t = torch.randn(n, generator=generator, device=x0.device, dtype=x0.dtype).sigmoid()
        eps = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        return self.loss_at(network, x0, t, eps)
