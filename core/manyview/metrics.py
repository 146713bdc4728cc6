"""Representation diagnostics: alignment, uniformity (Wang & Isola, "Understanding
Contrastive Representation Learning through Alignment and Uniformity on the Hypersphere",
ICML 2020) and effective rank (Roy & Vetterli, "The effective rank: a measure of effective
dimensionality", EUSIPCO 2007; RankMe, Garrido et al. ICML 2023).

Each function takes embeddings as given (normalise first for the hypersphere metrics) and
returns a Python float. For all three, lower alignment, lower uniformity and higher
effective rank are "better" in the usual reading.
"""

from __future__ import annotations

import math
from itertools import combinations

import torch
from torch import Tensor

__all__ = ["alignment", "effective_rank", "uniformity"]


def _as_views(x: Tensor, who: str) -> Tensor:
    if not isinstance(x, Tensor) or x.dim() not in (2, 3):
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{who}: expects (N, D) or (N, M, D) embeddings, got {shape}")
    if x.numel() == 0:
        raise ValueError(
            f"{who}: the embeddings are empty (shape {tuple(x.shape)}); pass at least one "
            "embedding with at least one feature"
        )
    if not torch.isfinite(x).all():
        raise ValueError(f"{who}: embeddings contain NaN or inf")
    x = x.detach()
    x = x.to(torch.float64 if x.dtype == torch.float64 else torch.float32)
    return x if x.dim() == 3 else x[:, None]


def alignment(views: Tensor, alpha: float = 2.0) -> float:
    r"""Mean over view pairs of :math:`\mathbb{E}_i\lVert z_i^m - z_i^l\rVert_2^\alpha`.

    Args:
        views: (N, M, D) with M >= 2 (positive pairs are the views of one instance).
        alpha: the exponent α (default 2).
    """
    z = _as_views(views, "alignment")
    if z.shape[1] < 2:
        raise ValueError("alignment needs at least two views (N, M >= 2, D)")
    pairs = [
        (z[:, a] - z[:, b]).norm(dim=1).pow(alpha).mean()
        for a, b in combinations(range(z.shape[1]), 2)
    ]
    return float(torch.stack(pairs).mean())


def uniformity(x: Tensor, t: float = 2.0) -> float:
    r""":math:`\log \mathbb{E}_{i<j} e^{-t\lVert z_i - z_j\rVert^2}` within each view, averaged
    over views; computed as a log-sum-exp, so it is stable for any t.

    Args:
        x: (N, D) or (N, M, D) with N >= 2.
        t: the scale t (default 2).
    """
    z = _as_views(x, "uniformity")
    n = z.shape[0]
    if n < 2:
        raise ValueError("uniformity needs at least two embeddings")
    iu = torch.triu_indices(n, n, offset=1, device=z.device)
    values = []
    for m in range(z.shape[1]):
        sq = torch.cdist(z[:, m], z[:, m]).pow(2)[iu[0], iu[1]]
        values.append(torch.logsumexp(-t * sq, dim=0) - math.log(iu.shape[1]))
    return float(torch.stack(values).mean())


def effective_rank(
    x: Tensor, *, center: bool = False, on: str = "singular", eps: float = 1e-7
) -> float:
    r"""Effective rank :math:`\exp(-\sum_k p_k\log p_k)`, :math:`p = \sigma/\lVert\sigma\rVert_1`.

    Args:
        x: (N, D) embeddings (N should be logged with the value: erank <= min(N, D)).
        center: subtract the mean embedding first.
        on: ``"singular"`` (σ of x, RankMe and the DHEL code) or ``"cov_eig"`` (eigenvalues
            of the covariance, i.e. σ², which gives a different entropy).
        eps: added to p before renormalising (RankMe and the DHEL code: 1e-7; 0 for the
            exact definition).
    """
    if on not in ("singular", "cov_eig"):
        raise ValueError(f"effective_rank: on must be 'singular' or 'cov_eig', got {on!r}")
    z = _as_views(x, "effective_rank")
    if z.shape[1] != 1:
        raise ValueError("effective_rank expects (N, D) embeddings; pass one view at a time")
    z = z[:, 0]
    if center:
        z = z - z.mean(dim=0, keepdim=True)
    sigma = torch.linalg.svdvals(z)
    if on == "cov_eig":
        sigma = sigma.pow(2)
    total = sigma.sum()
    if total <= 0:
        return 1.0
    p = sigma / total + eps
    p = p / p.sum()
    entropy = -torch.special.xlogy(p, p).sum()
    return float(entropy.exp())
