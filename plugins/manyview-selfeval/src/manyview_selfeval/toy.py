"""A 2-D class-conditional toy on which Self-E's few-step advantage over flow matching shows
on a CPU (Yu et al., "Self-Evaluation Unlocks Any-Step Text-to-Image
Generation", arXiv 2512.22374).

- :func:`toy_data`: 4 classes, each a mixture of 2 Gaussian modes at (±2, y_c) with σ = 0.1;
  a few-step sampler of a flow-matching model lands between a class's two modes, Self-E's
  lands on them.
- :class:`ToyDenoiser`: a 128-wide MLP on the denoiser contract ``model(x_t, t, s, cond) ->
  V`` of :mod:`manyview_selfeval.objective`, conditioned on a one-hot class (the null
  condition is all zeros) and on both times, as Self-E's ẽ = MLP_t(emb t) + MLP_s(emb(t−s)).
- :func:`train_toy`: Adam (0.9, 0.95), EMA, prompt dropout, τ annealed, either objective.
- :func:`toy_ddim_sde_sample`: the toy's own sampler, minFM's DDIM-SDE step
  (``Totoro97/minFM``, ``utils_fm/sampler.py``, ``FlowSampler``) with η = 1 on the uniform
  grid t_k = 1 − k/K, landing time s_k = t_{k+1} for Self-E and s_k = t_k for flow matching
  (the paper's eq. 22 with its any-step landing time), without guidance.
- :func:`mode_distance`: the mean distance of samples to the nearest mode of their class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from manyview.options import check_choice, check_fraction, check_int, check_positive
from manyview.teachers import EMATeacher
from manyview_selfeval.objective import MODES, SelfELoss, evaluate

__all__ = [
    "TOY_CLASSES",
    "TOY_SIGMA",
    "ToyDenoiser",
    "ToyRun",
    "mode_distance",
    "toy_data",
    "toy_ddim_sde_sample",
    "toy_modes",
    "train_toy",
]

TOY_CLASSES = 4
"""The toy's classes."""

TOY_SIGMA = 0.1
"""The standard deviation of each mode."""


def toy_modes() -> Tensor:
    """The modes (4, 2, 2): class c has its two at (−2, y_c) and (2, y_c), y_c = 2c − 3."""
    y = torch.arange(TOY_CLASSES, dtype=torch.float32) * 2 - 3
    x = torch.tensor([-2.0, 2.0])
    return torch.stack(torch.broadcast_tensors(x[None, :], y[:, None]), dim=-1)


def toy_data(n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """``n`` points of the toy: ``(x, labels)``, x (n, 2) float32, labels (n,) int64 drawn
    uniformly, each point at one of its class's two modes (equally likely) plus N(0, σ²)."""
    n = check_int(n, "n", "toy_data")
    labels = torch.randint(0, TOY_CLASSES, (n,), generator=generator)
    side = torch.randint(0, 2, (n,), generator=generator)
    noise = torch.randn(n, 2, generator=generator)
    return toy_modes()[labels, side] + TOY_SIGMA * noise, labels


def one_hot(labels: Tensor) -> Tensor:
    """The toy's condition of ``labels`` (n,): one-hot (n, 4) float32."""
    return nn.functional.one_hot(labels, TOY_CLASSES).float()


def _sinusoidal(t: Tensor, dim: int) -> Tensor:
    """[sin, cos] features of 1000 t at frequencies 10000^(−i/(dim/2)) (Vaswani et al. 2017;
    the DDPM / diffusers timestep embedding), (n, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
    angles = 1000.0 * t.float()[:, None] * freqs[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class ToyDenoiser(nn.Module):
    """A velocity MLP on the denoiser contract: ``model(x_t (n, 2), t (n,), s (n,), cond
    (n, 4)) -> V (n, 2)``. h = W[x, cond] + MLP_t(emb t) + MLP_s(emb(t−s)), then SiLU and
    two ``hidden``-wide layers; MLP_s's last layer starts at zero, so s is a no-op at
    initialisation.

    Args:
        hidden: the width (128).
        time_dim: the sinusoidal features of each time (32).
    """

    def __init__(self, hidden: int = 128, time_dim: int = 32) -> None:
        super().__init__()
        self.hidden = check_int(hidden, "hidden", "toy_denoiser")
        self.time_dim = check_int(time_dim, "time_dim", "toy_denoiser")
        if time_dim % 2:
            raise ValueError(f"toy_denoiser: time_dim must be even, got {time_dim}")
        self.inp = nn.Linear(2 + TOY_CLASSES, hidden)
        self.time_t = nn.Sequential(
            nn.Linear(time_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden)
        )
        self.time_s = nn.Sequential(
            nn.Linear(time_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden)
        )
        nn.init.zeros_(self.time_s[-1].weight)
        nn.init.zeros_(self.time_s[-1].bias)
        self.body = nn.Sequential(
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, 2),
        )

    def forward(self, x: Tensor, t: Tensor, s: Tensor, cond: Tensor) -> Tensor:
        h = self.inp(torch.cat([x, cond.to(x.dtype)], dim=1))
        h = h + self.time_t(_sinusoidal(t, self.time_dim)).to(h.dtype)
        h = h + self.time_s(_sinusoidal(t - s, self.time_dim)).to(h.dtype)
        return self.body(h)


@dataclass
class ToyRun:
    """A trained toy: the online ``model``, its EMA copy ``ema`` (the one to sample from),
    the objective's ``mode`` and the total loss of every step."""

    model: ToyDenoiser
    ema: ToyDenoiser
    mode: str
    losses: list[float] = field(default_factory=list)


def train_toy(
    mode: str,
    steps: int = 3000,
    batch: int = 256,
    seed: int = 0,
    *,
    lr: float = 1e-3,
    ema_momentum: float = 0.99,
    anneal_fraction: float = 0.4,
    p_drop: float = 0.1,
    hidden: int = 128,
    **loss_options: Any,
) -> ToyRun:
    """Train a :class:`ToyDenoiser` on :func:`toy_data` with :class:`SelfELoss`.

    Each step draws a fresh batch, replaces each row's condition by the null one (zeros)
    with probability ``p_drop``, takes one Adam step (betas (0.9, 0.95), minFM's and
    Self-E's) and updates the EMA (the core :class:`~manyview.teachers.EMATeacher`, whose
    copy is also the conditional evaluator branch). Everything is drawn from one generator
    seeded with ``seed`` (and the weights from ``seed``), so a run is reproducible.

    Args:
        mode: ``"self_e"`` or ``"flow_matching"``.
        steps, batch, seed: the run's length, batch size and seed.
        lr: Adam's learning rate (1e-3, constant).
        ema_momentum: the EMA's momentum (0.99).
        anneal_fraction: τ rises over this share of the steps (0.4).
        p_drop: the prompt-dropout rate (0.1).
        hidden: the MLP's width.
        **loss_options: further :class:`SelfELoss` options.
    """
    who = "train_toy"
    mode = check_choice(mode, MODES, "mode", who)
    steps = check_int(steps, "steps", who)
    batch = check_int(batch, "batch", who)
    seed = check_int(seed, "seed", who, least=0)
    lr = check_positive(lr, "lr", who)
    ema_momentum = check_fraction(ema_momentum, "ema_momentum", who)
    p_drop = check_fraction(p_drop, "p_drop", who)
    loss = SelfELoss(mode, anneal_fraction=anneal_fraction, **loss_options)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ToyDenoiser(hidden)
    ema = EMATeacher(model, momentum=ema_momentum)
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.95))
    generator = torch.Generator().manual_seed(seed)
    null = torch.zeros(1, TOY_CLASSES)
    run = ToyRun(model, ema.module, mode)
    for step in range(steps):
        x0, labels = toy_data(batch, generator)
        cond = one_hot(labels)
        drop = torch.rand(batch, generator=generator) < p_drop
        cond[drop] = 0.0
        total, _ = loss(
            model,
            x0,
            cond,
            null,
            generator=generator,
            progress=step / steps,
            ema_model=ema.module,
        )
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        ema.update(model)
        run.losses.append(total.item())
    return run


def toy_ddim_sde_sample(
    model: nn.Module,
    labels: Tensor,
    steps: int,
    *,
    mode: str = "self_e",
    eta: float = 1.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """The toy's own sampler: K = ``steps`` DDIM-SDE steps from x = ε at t = 1 to t = 0.

    On t_k = 1 − k/K, with α = 1 − t_k, β = t_k (primes at t_{k+1}) and V = model(x, t_k,
    s_k, c): x0 = x − βV, ε = x + αV, β_sde = max(β′ − η(β − β′)β′/β, 0) and x ← α′x0 +
    β_sde ε + √(β′² − β_sde²) n, n ~ N(0, I) (minFM's ``FlowSampler``, ``ddim``); the last
    step returns x0. s_k = t_{k+1} for ``mode="self_e"`` (the step's landing time), s_k = t_k
    for ``"flow_matching"``. No guidance.

    Args:
        model: a denoiser on the contract (run in eval mode without gradients).
        labels: the classes (n,), int64.
        steps: K >= 1.
        mode: ``"self_e"`` or ``"flow_matching"`` (the landing-time policy).
        eta: η, the share of stochasticity (1: the paper's and minFM's).
        generator: the only source of randomness.

    Returns:
        Samples (n, 2), float32.
    """
    who = "toy_ddim_sde_sample"
    steps = check_int(steps, "steps", who)
    mode = check_choice(mode, MODES, "mode", who)
    eta = check_fraction(eta, "eta", who)
    n = labels.shape[0]
    cond = one_hot(labels)
    grid = torch.linspace(1.0, 0.0, steps + 1)
    x = torch.randn(n, 2, generator=generator)
    for k in range(steps):
        t, t_next = float(grid[k]), float(grid[k + 1])
        s = t_next if mode == "self_e" else t
        v = evaluate(model, x, torch.full((n,), t), torch.full((n,), s), cond)
        alpha, beta, alpha_next, beta_next = 1.0 - t, t, 1.0 - t_next, t_next
        x0, eps = x - beta * v, x + alpha * v
        beta_sde = max(beta_next - eta * (beta - beta_next) * beta_next / beta, 0.0)
        noise = torch.randn(n, 2, generator=generator)
        x = (
            alpha_next * x0
            + beta_sde * eps
            + math.sqrt(max(beta_next**2 - beta_sde**2, 0.0)) * noise
        )
    return x


def mode_distance(samples: Tensor, labels: Tensor) -> float:
    """The mean over samples (n, 2) of the distance to the nearest of their class's two
    modes (labels (n,))."""
    if samples.dim() != 2 or samples.shape[1] != 2 or labels.shape != samples.shape[:1]:
        raise ValueError(
            f"mode_distance: expects samples (n, 2) and labels (n,), got "
            f"{tuple(samples.shape)} and {tuple(labels.shape)}"
        )
    modes = toy_modes()[labels]  # (n, 2, 2)
    return float((samples[:, None, :].float() - modes).norm(dim=-1).amin(dim=1).mean())
