"""Poly-View Contrastive learning (Shidani, Hjelm, Ramapuram, Webb, Dhekane, Busbridge,
"Poly-View Contrastive Learning", ICLR 2024)."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from manyview.losses.base import ContrastiveLoss, anchors, instance_gram, view_major
from manyview.losses.engine import EngineConfig, EngineOption, dense_logsumexp, view_major_lse


def other_instance_lse(
    z: Tensor,
    temperature: float,
    offset: int = 0,
    count: int | None = None,
    *,
    tiled: EngineConfig | None = None,
) -> Tensor:
    """``(N, M, D)`` -> ``(count, M)``: for anchor (i, m), LSE over every view of every
    other instance, log sum_{j != i, l} exp(s_ij^{ml}/τ), for the instances i in
    ``offset .. offset+count-1`` (default: all). ``tiled``: an engine config
    to take it by :func:`~manyview.losses.engine.view_major_lse` with (its tile and backend)
    instead of from the (M·count, MN) logits."""
    n, m, _ = z.shape
    if tiled is not None:
        count = n if count is None else count
        lse = view_major_lse(
            z, 1.0 / temperature, offset=offset, count=count, exclude="instance", engine=tiled
        )
        return lse.view(m, count).T
    flat = view_major(z)
    if count is None or (offset == 0 and count == n):
        count, rows = n, flat
    else:
        rows = view_major(z[offset : offset + count])
    # one (M·count, MN) matrix, its softmax kept for a two-product backward
    row_inst = torch.arange(offset, offset + count, device=z.device).repeat(m)
    inst = torch.arange(n, device=z.device).repeat(m)
    lse = dense_logsumexp(rows, flat, 1.0 / temperature, row_ids=row_inst, col_ids=inst)
    return lse.view(m, count).T


class PolyViewContrastive(ContrastiveLoss):
    r"""Poly-View Contrastive loss (PVC), implemented from the paper's formula.

    For anchor (i, α) and target view β != α,

    .. math:: \ell_{i\alpha\beta} = -s_{ii}^{\alpha\beta}/\tau + \log\Big(e^{s_{ii}^{\alpha\beta}/\tau}
              + \sum_{j\ne i,\gamma} e^{s_{ij}^{\alpha\gamma}/\tau}\Big)

    (the anchor's other views are masked out). ``method="geometric"`` averages ℓ over β, α
    and i; ``"arithmetic"`` aggregates per (i, α) as -log((1/(M-1)) Σ_β exp(-ℓ_{iαβ})),
    per sample — not the re-implementation that mixes batch means into the aggregation.

    Args:
        temperature: τ.
        method: ``"geometric"`` (default) or ``"arithmetic"``.
        normalize: L2-normalise the views first.
        engine: ``"dense"`` takes the LSE over every view of the other instances from the
            (MN x MN) logits; ``"tiled"`` never builds them (memory O(MN·D + tile²));
            ``"auto"`` (default) tiles above
            :data:`~manyview.losses.engine.DEFAULT_MIN_ENTRIES` logits; an
            :class:`~manyview.losses.engine.EngineConfig` also sets the tile and backend.

    Inputs: ``views`` (N, M, D) or M tensors (N, D). Output: a 0-dim tensor.
    """

    def __init__(
        self,
        temperature: float = 0.1,
        *,
        method: str = "geometric",
        normalize: bool = True,
        engine: EngineOption = "auto",
    ) -> None:
        super().__init__(temperature, normalize=normalize, engine=engine, who="pvc")
        if method not in ("geometric", "arithmetic"):
            raise ValueError(f"pvc: method must be 'geometric' or 'arithmetic', got {method!r}")
        self.method = method

    def compute_local(self, z: Tensor, *, offset: int, count: int, **_: Any) -> Tensor:
        n, m, _ = z.shape
        other = other_instance_lse(
            z, self.temperature, offset, count, tiled=self.tiled(m * count * m * n)
        )
        pos = instance_gram(anchors(z, offset, count)) / self.temperature  # (count, M, M)
        # ℓ = -g + log(e^g + e^o) = softplus(o - g)
        ell = F.softplus(other[:, :, None] - pos)  # (N, α, β)
        off = ~torch.eye(m, dtype=torch.bool, device=z.device)
        if self.method == "geometric":
            return ell[:, off].mean()
        neg = (-ell).masked_fill(~off, float("-inf"))
        per_anchor = -neg.logsumexp(dim=2) + math.log(m - 1)  # (N, α)
        return per_anchor.mean()
