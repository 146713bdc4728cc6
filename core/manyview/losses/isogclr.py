"""iSogCLR: robust global contrastive learning with individualised temperatures (Qiu, Hu,
Yuan, Zhou, Zhang, Yang, "Not All Semantics are Created Equal: Contrastive Self-supervised
Learning with Automatic Temperature Individualization", ICML 2023)."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import Tensor

from manyview.losses.base import MultiViewLoss, check_temperature, instance_gram, view_major
from manyview.losses.engine import (
    EngineConfig,
    EngineOption,
    tiled_logsumexp,
    tiled_softmax_moment,
)
from manyview.options import check_allocation


class ISogCLR(MultiViewLoss):
    r"""The robust global contrastive objective with one learned temperature per sample.

    The objective (RGCL) is

    .. math:: F(w, \tau) = \frac1n\sum_i \tau_i\log\frac{1}{|S_i^-|}\sum_{z\in S_i^-}
              e^{h_i(z)/\tau_i} + \tau_i\rho, \qquad h_i(z) = s(a_i, z) - s(a_i, a_i^+)

    over the dataset. Each step keeps, per dataset sample (by ``index``), a moving average u
    of the partition function (γ), a temperature τ and its momentum (β), and returns the
    surrogate :math:`\sum_m [\frac{1}{|S^-|}\sum_j p_{ij} s_{ij} - \bar s_{i+}]` averaged
    over instances, with detached weights :math:`p_{ij} = e^{s_{ij}/\tau_i}/u_i`: its gradient
    in the embeddings is the stochastic gradient of F. τ then takes a clipped, momentum
    projected-gradient step, :math:`G_i = \log u_i + \rho - \frac{1}{|S^-|}\sum_j p_{ij}
    s_{ij}/\tau_i`. The state is updated once per forward in training mode.

    Negatives of anchor (i, m) are every view of every other instance in the batch
    (|S^-| = M(N-1), the official 2N-2 at M = 2); positives are i's other views (their
    mean). Unlike the official code, u is kept in the log domain, so nothing overflows at
    small τ. The value of F on the batch is kept in :attr:`last_objective`.

    Args:
        num_samples: dataset size; ``index`` must lie in [0, num_samples).
        tau_init: initial temperature (0.1).
        tau_min, tau_max: projection interval of τ (LibAUC: 0.05, 0.7).
        rho: the KL-ball radius ρ (LibAUC: 0.3; a larger ρ gives smaller τ).
        gamma: moving-average rate of u (LibAUC: 0.9); a sample's first visit sets u = g.
        beta: momentum rate of the τ gradient (0.9).
        eta: step size of τ (0.01).
        grad_clip: clip of the τ gradient (3, the official unimodal value).
        normalize: L2-normalise the views first.
        engine: ``"dense"`` (the MN x MN similarities), ``"tiled"``, ``"auto"`` (default:
            tiled above :data:`~manyview.losses.engine.DEFAULT_MIN_ENTRIES` entries) or an
            :class:`~manyview.losses.engine.EngineConfig`. The tiled form gives the same value, gradient and state update in O(MN·D + tile²)
            memory: every statistic is a function of the per-row (τ_i-scaled) LSE over the
            negatives and of the softmax mean similarity.

    Inputs: ``views`` (N, M, D) or M tensors (N, D) and ``index`` (N,) dataset indices,
    unique within the batch. Output: a 0-dim tensor.

    Under torch.distributed the loss falls back to the ``"full"`` gather mode (see
    :class:`~manyview.losses.base.MultiViewLoss`): every rank computes the whole global
    loss with the gathered ``index`` and so makes the same state update, which keeps the
    ranks' u and τ identical (and equal to one process on the global batch).
    """

    needs = ("index",)
    from_context: ClassVar[dict[str, str]] = {"num_samples": "dataset_size"}

    def __init__(
        self,
        num_samples: int,
        *,
        tau_init: float = 0.1,
        tau_min: float = 0.05,
        tau_max: float = 0.7,
        rho: float = 0.3,
        gamma: float = 0.9,
        beta: float = 0.9,
        eta: float = 0.01,
        grad_clip: float = 3.0,
        normalize: bool = True,
        engine: EngineOption = "auto",
    ) -> None:
        super().__init__(normalize=normalize)
        self.engine = EngineConfig.parse(engine, "isogclr")
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(
                f"isogclr: num_samples must be a positive int (the dataset size), got {num_samples!r}"
            )
        for name, value in (("gamma", gamma), ("beta", beta)):
            if not 0 < value <= 1:
                raise ValueError(f"isogclr: {name} must be in (0, 1], got {value}")
        check_temperature(tau_init, "tau_init")
        if not 0 < tau_min <= tau_init <= tau_max:
            raise ValueError(
                f"isogclr: need 0 < tau_min <= tau_init <= tau_max, got {tau_min}, {tau_init}, {tau_max}"
            )
        check_allocation(
            num_samples, 13, f"per-sample state for num_samples={num_samples}", "isogclr"
        )
        self.num_samples = num_samples
        self.tau_min, self.tau_max, self.rho = float(tau_min), float(tau_max), float(rho)
        self.gamma, self.beta, self.eta, self.grad_clip = (
            float(gamma),
            float(beta),
            float(eta),
            float(grad_clip),
        )
        self.register_buffer("tau", torch.full((num_samples,), float(tau_init)))
        self.register_buffer("log_u", torch.zeros(num_samples))
        self.register_buffer("tau_momentum", torch.zeros(num_samples))
        self.register_buffer("seen", torch.zeros(num_samples, dtype=torch.bool))
        self.last_objective: Tensor | None = None

    def check_index(self, index: Tensor, n: int) -> Tensor:
        if not isinstance(index, Tensor):
            index = torch.as_tensor(index)
        if index.dim() != 1 or index.shape[0] != n:
            raise ValueError(f"isogclr: index must have shape ({n},), got {tuple(index.shape)}")
        if index.is_floating_point() or index.dtype == torch.bool:
            raise ValueError(f"isogclr: index must be an integer tensor, got {index.dtype}")
        lo, hi = int(index.min()), int(index.max())
        if lo < 0 or hi >= self.num_samples:
            raise ValueError(
                f"isogclr: index out of range [{lo}, {hi}] for num_samples={self.num_samples}; "
                "set num_samples to the dataset size"
            )
        if index.unique().numel() != n:
            raise ValueError(
                "isogclr: index has duplicates; each dataset sample at most once per batch"
            )
        return index.to(self.tau.device).long()

    def compute(self, z: Tensor, *, index: Tensor | None = None, **_: Any) -> Tensor:
        n, m, _ = z.shape
        index = self.check_index(index, n)
        if self.engine.use_tiled((m * n) ** 2):
            return self._compute_tiled(z, index)
        flat = view_major(z)
        sim = flat @ flat.T  # (MN, MN)
        inst = torch.arange(n, device=z.device).repeat(m)
        neg = inst[:, None] != inst[None, :]
        num_neg = m * (n - 1)
        tau = self.tau[index].to(z.dtype).repeat(m)[:, None]  # (MN, 1), row a = (m, i)
        gram = instance_gram(z)
        pos = ((gram.sum(-1) - gram.diagonal(dim1=1, dim2=2)) / (m - 1)).T.reshape(-1)  # (MN,)

        with torch.no_grad():
            scaled = (sim / tau).masked_fill(~neg, float("-inf"))
            log_g = scaled.logsumexp(dim=1) - math.log(num_neg)  # (MN,)
            old = self.log_u[index].to(z.dtype).repeat(m)
            first = (~self.seen[index]).repeat(m)
            keep = math.log1p(-self.gamma) if self.gamma < 1 else float("-inf")
            moved = torch.logaddexp(old + keep, log_g + math.log(self.gamma))
            log_u = torch.where(first, log_g, moved)  # per anchor row
            weights = torch.exp(scaled - log_u[:, None])  # p_ij, 0 off the negatives
            grad_tau = (
                log_u + self.rho - (weights * (sim / tau).masked_fill(~neg, 0)).sum(1) / num_neg
            )
            grad_tau = grad_tau.view(m, n).mean(0).clamp(-self.grad_clip, self.grad_clip)
            hneg = ((sim - pos[:, None]) / tau).masked_fill(~neg, float("-inf"))
            objective = tau[:, 0] * (hneg.logsumexp(1) - math.log(num_neg)) + tau[:, 0] * self.rho
            self.last_objective = objective.mean().detach()

        surrogate = (weights * sim).masked_fill(~neg, 0).sum(dim=1) / num_neg - pos  # (MN,)
        loss = surrogate.view(m, n).sum(dim=0).mean()
        self._update_state(index, log_u, grad_tau, m, n)
        return loss

    def _update_state(self, index: Tensor, log_u: Tensor, grad_tau: Tensor, m: int, n: int) -> None:
        """The once-per-training-forward update of u, seen, the τ momentum and τ, from the
        anchors' ``log_u`` (M·N,) and the instances' clipped τ gradient ``grad_tau`` (N,)."""
        if self.training:
            with torch.no_grad():
                new_log_u = log_u.view(m, n).logsumexp(0) - math.log(m)  # mean of the views' u
                self.log_u[index] = new_log_u.to(self.log_u.dtype)
                self.seen[index] = True
                mom = (1 - self.beta) * self.tau_momentum[index] + self.beta * grad_tau.to(
                    self.tau.dtype
                )
                self.tau_momentum[index] = mom
                self.tau[index] = (self.tau[index] - self.eta * mom).clamp(
                    self.tau_min, self.tau_max
                )

    def _compute_tiled(self, z: Tensor, index: Tensor) -> Tensor:
        r""":meth:`compute` without the (MN x MN) matrices.

        For anchor a with temperature τ_a, let lse_a = LSE_{j ∈ S_a^-} s_aj/τ_a (tiled, with
        the instance ids as the exclusion rule and 1/τ_a as a per-row scale) and
        μ_a = Σ_j softmax_aj s_aj (the softmax mean similarity, d lse_a / d(1/τ_a)). With
        c_a = exp(lse_a - log u_a), the weights are p_aj = c_a softmax_aj, so

        - Σ_j p_aj s_aj = c_a μ_a (the surrogate's value and G's last term),
        - its gradient with p held constant is c_a τ_a ∇lse_a, which the loss gets from
          ``c_a τ_a (lse_a - lse_a.detach())`` (value 0),
        - log g_a = lse_a - log|S^-| and F_a = τ_a (lse_a - s̄_a+/τ_a - log|S^-|) + τ_a ρ.
        """
        n, m, _ = z.shape
        flat = view_major(z)
        inst = torch.arange(n, device=z.device).repeat(m)
        num_neg = m * (n - 1)
        tau = self.tau[index].to(z.dtype).repeat(m)  # (MN,), row a = (m, i)
        gram = instance_gram(z)
        pos = ((gram.sum(-1) - gram.diagonal(dim1=1, dim2=2)) / (m - 1)).T.reshape(-1)  # (MN,)
        options = self.engine.lse_options()
        lse = tiled_logsumexp(flat, flat, 1.0 / tau, row_ids=inst, col_ids=inst, **options)

        with torch.no_grad():
            lse_value = lse.detach()
            log_g = lse_value - math.log(num_neg)  # (MN,)
            old = self.log_u[index].to(z.dtype).repeat(m)
            first = (~self.seen[index]).repeat(m)
            keep = math.log1p(-self.gamma) if self.gamma < 1 else float("-inf")
            moved = torch.logaddexp(old + keep, log_g + math.log(self.gamma))
            log_u = torch.where(first, log_g, moved)  # per anchor row
            coef = torch.exp(lse_value - log_u)  # Σ_j p_aj
            mean_sim = tiled_softmax_moment(
                flat.detach(),
                flat.detach(),
                1.0 / tau,
                lse_value,
                row_ids=inst,
                col_ids=inst,
                tile=self.engine.tile,
            )
            weighted = coef * mean_sim  # Σ_j p_aj s_aj
            grad_tau = log_u + self.rho - weighted / tau / num_neg
            grad_tau = grad_tau.view(m, n).mean(0).clamp(-self.grad_clip, self.grad_clip)
            objective = tau * (lse_value - pos.detach() / tau - math.log(num_neg)) + tau * self.rho
            self.last_objective = objective.mean().detach()

        surrogate = (weighted + coef * tau * (lse - lse_value)) / num_neg - pos  # (MN,)
        loss = surrogate.view(m, n).sum(dim=0).mean()
        self._update_state(index, log_u, grad_tau, m, n)
        return loss
