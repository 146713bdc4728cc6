"""SupReMix: supervised contrastive regression with mixup hard pairs (Wu, Dong, Chen, Zhou,
Zhou, "Mixup Your Own Pairs", arXiv 2309.16633, 2023)."""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from manyview import distributed
from manyview.losses.base import MultiViewLoss, check_temperature, view_major


class SupReMix(MultiViewLoss):
    r"""Supervised contrastive regression with embedding-level mixup hard negatives and
    hard positives, implemented from the formula.

    Over the R = MN rows with scalar labels y (repeated for every view), for anchor a:

    - hard negatives (anchor-inclusive): for each row k with y_k != y_a, the mixture
      :math:`\lambda z_a + (1-\lambda) z_k`, λ ~ Beta(``neg_beta``), label
      :math:`\lambda y_a + (1-\lambda) y_k`;
    - hard positives (anchor-exclusive): for rows j, k with y_j < y_a < y_k inside the
      ``window``, the mixture :math:`\alpha z_j + (1-\alpha) z_k` with
      :math:`\alpha = (y_k - y_a)/(y_k - y_j)`, whose interpolated label is exactly y_a.

    Mixtures are built from detached embeddings (only the anchor receives their gradient)
    and never materialised: their similarities are mixtures of the Gram matrix's entries.
    The loss is SupCon's L_out over the real rows plus the mixtures,

    .. math:: \ell_a = -\frac{1}{|P_a|}\sum_{p\in P_a}\Big[\frac{s_{ap}}{\tau} -
              \log\sum_{c\in C_a} w_{ac}\,e^{s_{ac}/\tau}\Big]

    with one log-sum-exp over the real and mixture candidates together (not the official
    code's two separately shifted ones), distance weights :math:`w = |\Delta y| + 1` ("l1",
    default), :math:`(\Delta y)^2 + 1` ("l2") or 1 ("none"), averaged over the R anchors.

    Args:
        temperature: τ (official: 0.3, with no base-temperature rescaling).
        window: the label window n of the hard positives (5).
        neg_beta: Beta parameters of λ (official default Beta(2, 8)), or a float for a fixed λ.
        weighting: "l1", "l2" or "none".
        detach_mixtures: build mixtures from detached embeddings (official; default ``True``).
        normalize: L2-normalise the views first.

    Inputs: ``views`` (N, M, D) or M tensors (N, D) and ``labels`` (N,) real-valued targets.
    λ is drawn from torch's global generator (seed it with ``torch.manual_seed``).
    Output: a 0-dim tensor.

    Under torch.distributed the loss falls back to the ``"full"`` gather mode (every rank
    computes the whole global loss; see :class:`~manyview.losses.base.MultiViewLoss`), and
    every rank uses rank 0's draw of λ, so all ranks compute the same function as one
    process on the global batch seeded like rank 0.
    """

    min_views = 1
    needs = ("labels",)
    label_kind = "scalar"

    def __init__(
        self,
        temperature: float = 0.3,
        *,
        window: float = 5.0,
        neg_beta: tuple[float, float] | float = (2.0, 8.0),
        weighting: str = "l1",
        detach_mixtures: bool = True,
        normalize: bool = True,
    ) -> None:
        super().__init__(normalize=normalize)
        if weighting not in ("l1", "l2", "none"):
            raise ValueError(f"supremix: weighting must be 'l1', 'l2' or 'none', got {weighting!r}")
        if isinstance(neg_beta, int | float):
            if not 0 <= neg_beta <= 1:
                raise ValueError(
                    f"supremix: a fixed neg_beta is λ and must lie in [0, 1], got {neg_beta}"
                )
        elif len(neg_beta) != 2 or min(neg_beta) <= 0:
            raise ValueError(f"supremix: neg_beta must be (a, b) with a, b > 0, got {neg_beta}")
        self.temperature = check_temperature(temperature)
        self.window = float(window)
        self.neg_beta = neg_beta
        self.weighting = weighting
        self.detach_mixtures = detach_mixtures

    def _weight(self, dy: Tensor) -> Tensor:
        dy = dy.abs()
        if self.weighting == "l1":
            return dy + 1
        if self.weighting == "l2":
            return dy * dy + 1
        return torch.ones_like(dy)

    def _lambdas(self, r: int, like: Tensor) -> Tensor:
        if isinstance(self.neg_beta, int | float):
            return torch.full((r, r), float(self.neg_beta), dtype=like.dtype, device=like.device)
        concentration = torch.tensor(self.neg_beta, dtype=like.dtype, device=like.device)
        beta = torch.distributions.Beta(concentration[0], concentration[1])
        lam = beta.sample((r, r))  # global RNG: seeded by torch.manual_seed
        if distributed.is_distributed() and distributed.is_global_batch():
            lam = lam.contiguous()  # Beta samples are a strided view
            dist.broadcast(lam, src=0)  # the ranks' generators differ; share rank 0's draw
        return lam

    def compute(self, z: Tensor, *, labels: Tensor | None = None, **_: Any) -> Tensor:
        m = z.shape[1]
        flat = view_major(z)
        r = flat.shape[0]
        y = labels.to(z.dtype).repeat(m)  # (R,)
        tau = self.temperature
        sim = flat @ flat.T  # real similarities (gradient to both sides)
        # anchor against the rows the mixtures are built from (detached by default)
        sim_d = flat @ flat.detach().T if self.detach_mixtures else sim
        eye = torch.eye(r, dtype=torch.bool, device=z.device)
        dy = y[:, None] - y[None, :]

        # real candidates: every other row, weighted by label distance
        real = (sim / tau + self._weight(dy).log()).masked_fill(eye, float("-inf"))
        # hard negatives n_ak = λ z_a + (1-λ) z_k for y_k != y_a
        lam = self._lambdas(r, z)
        self_sim = sim_d.diagonal()[:, None]
        neg_mix = (lam * self_sim + (1 - lam) * sim_d) / tau
        neg_weight = self._weight((1 - lam) * dy)
        neg_terms = (neg_mix + neg_weight.log()).masked_fill(dy == 0, float("-inf"))
        # hard positives p_ajk = α z_j + (1-α) z_k, y_j < y_a < y_k within the window
        lower = (dy > 0) & (dy < self.window)  # [a, j]: y_j below y_a
        upper = (dy < 0) & (-dy < self.window)  # [a, k]: y_k above y_a
        valid = lower[:, :, None] & upper[:, None, :]  # (R, R, R)
        span = y[None, None, :] - y[None, :, None]  # [., j, k]: y_k - y_j
        span = torch.where(span == 0, torch.ones_like(span), span)
        alpha = ((y[None, None, :] - y[:, None, None]) / span).clamp(0, 1)  # [a, j, k]
        pos_mix = (alpha * sim_d[:, :, None] + (1 - alpha) * sim_d[:, None, :]) / tau  # (R, R, R)
        pos_mix_flat = pos_mix.masked_fill(~valid, float("-inf")).reshape(r, r * r)

        lse = torch.cat([real, neg_terms, pos_mix_flat], dim=1).logsumexp(dim=1)
        real_pos = (dy == 0) & ~eye
        pos_sum = torch.where(real_pos, sim / tau, 0).sum(1) + torch.where(
            valid, pos_mix, 0
        ).reshape(r, r * r).sum(1)
        count = real_pos.sum(1) + valid.reshape(r, -1).sum(1)
        per_anchor = lse - pos_sum / count.clamp(min=1)
        return torch.where(count > 0, per_anchor, 0).mean()
