"""MV-DHEL and DHEL: decoupled hyperspherical energy losses.

DHEL: Koromilas, Bouritsas, Giannakopoulos, Nicolaou, Panagakis, "Bridging Mini-Batch and
Asymptotic Analysis in Contrastive Learning: From InfoNCE to Kernel-Based Losses", ICML 2024.
MV-DHEL: Koromilas et al., "A Principled Framework for Multi-View Contrastive Learning", 2025.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from manyview.losses.base import ContrastiveLoss, anchors, instance_gram
from manyview.losses.engine import EngineConfig, EngineOption, dense_logsumexp, tiled_logsumexp


def within_view_lse(
    z: Tensor,
    temperature: float,
    offset: int = 0,
    count: int | None = None,
    *,
    tiled: EngineConfig | None = None,
) -> Tensor:
    """``(N, M, D)`` -> ``(count, M)``: LSE_{j != i} s_ij^{mm}/τ, each view's own
    uniformity, for the instances i in ``offset .. offset+count-1`` (default: all).
    One :func:`~manyview.losses.engine.dense_logsumexp` per view (a (count, N) matrix each),
    or with ``tiled``, an engine config, one :func:`~manyview.losses.engine.tiled_logsumexp`
    with its tile and backend."""
    n = z.shape[0]
    count = n if count is None else count
    local = torch.arange(offset, offset + count, device=z.device)
    every = torch.arange(n, device=z.device)
    lse_fn = dense_logsumexp if tiled is None else tiled_logsumexp
    options = {} if tiled is None else tiled.lse_options()
    per_view = [
        lse_fn(
            anchors(z[:, m], offset, count),
            z[:, m],
            1.0 / temperature,
            row_ids=local,
            col_ids=every,
            **options,
        )
        for m in range(z.shape[1])
    ]
    return torch.stack(per_view, dim=1)


class MVDHEL(ContrastiveLoss):
    r"""Multi-view DHEL: alignment over view pairs, uniformity within each view.

    .. math:: L = \frac1N\sum_i\Big[-\log\sum_{m<l} e^{s_{ii}^{ml}/\tau}
              + \sum_m \log\sum_{j\ne i} e^{s_{ij}^{mm}/\tau}\Big]

    Positives never enter a denominator (alignment is decoupled from uniformity), and the
    cost is M Gram blocks of N x N instead of one (MN)^2 matrix. The self term j = i is
    excluded from each view's sum, as in the official code (the README's formula keeps it).

    Args:
        temperature: τ (the paper's configs: 0.5 CIFAR/ImageNet-100, 0.1 ImageNet-1K).
        normalize: L2-normalise the views first.
        engine: for each view's uniformity: ``"dense"`` builds its (N x N) logits,
            ``"tiled"`` never does (memory O(N·D + tile²)), ``"auto"`` (default) tiles when
            the M blocks would hold more than
            :data:`~manyview.losses.engine.DEFAULT_MIN_ENTRIES` entries; or an
            :class:`~manyview.losses.engine.EngineConfig`.

    Inputs: ``views`` (N, M, D) or M tensors (N, D). Output: a 0-dim tensor.
    """

    def __init__(
        self, temperature: float = 0.1, *, normalize: bool = True, engine: EngineOption = "auto"
    ) -> None:
        super().__init__(temperature, normalize=normalize, engine=engine)

    def alignment_term(self, z: Tensor) -> Tensor:
        m = z.shape[1]
        gram = instance_gram(z) / self.temperature
        upper = torch.triu(torch.ones(m, m, dtype=torch.bool, device=z.device), diagonal=1)
        return gram[:, upper].logsumexp(dim=1)  # (N,)

    def _uniformity_views(self, z: Tensor) -> Tensor:
        """The views whose within-view uniformity counts: all of them."""
        return z

    def compute_local(self, z: Tensor, *, offset: int, count: int, **_: Any) -> Tensor:
        n, m, _ = z.shape
        tiled = self.tiled(m * count * n)  # the dense form builds (M, count, N) logits
        used = self._uniformity_views(z)
        uniform = within_view_lse(used, self.temperature, offset, count, tiled=tiled).sum(dim=1)
        return (uniform - self.alignment_term(anchors(z, offset, count))).mean()


class DHEL(MVDHEL):
    r"""Two-view DHEL: :math:`-s_{ii}^{12}/\tau + \log\sum_{j\ne i}e^{s_{ij}^{11}/\tau}
    + \log\sum_{j\ne i}e^{s_{ij}^{22}/\tau}`, averaged over instances.

    Args:
        temperature: τ (official default 0.3).
        include_augs: keep the second view's uniformity term (official default ``True``);
            ``False`` keeps only the anchor view's.
        normalize: L2-normalise the views first.
        engine: as for :class:`MVDHEL`.

    Inputs: ``views`` (N, 2, D) or two tensors (N, D). Output: a 0-dim tensor.
    """

    max_views = 2

    def __init__(
        self,
        temperature: float = 0.3,
        *,
        include_augs: bool = True,
        normalize: bool = True,
        engine: EngineOption = "auto",
    ) -> None:
        super().__init__(temperature, normalize=normalize, engine=engine)
        self.include_augs = include_augs

    def _uniformity_views(self, z: Tensor) -> Tensor:
        """Both views, or with ``include_augs=False`` the anchor view only."""
        return z if self.include_augs else z[:, :1]
