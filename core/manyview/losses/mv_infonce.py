"""MV-InfoNCE (Koromilas, Georgiou, Bouritsas, Giannakopoulos, Nicolaou, Panagakis 2025,
"A Principled Framework for Multi-View Contrastive Learning", arXiv 2507.06979)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from manyview.losses.base import ContrastiveLoss, anchors, instance_gram
from manyview.losses.engine import EngineOption, view_major_lse


class MVInfoNCE(ContrastiveLoss):
    r"""Multi-view InfoNCE: one term per instance, every view an anchor inside it.

    .. math:: L = \frac1N\sum_i\Big[-\log\!\!\sum_{m\ne l}\! e^{s_{ii}^{ml}/\tau}
              + \log\sum_m\sum_{(l,j)\ne(m,i)} e^{s_{ij}^{ml}/\tau}\Big]

    The denominator is the union of the M anchor rows of instance i in the MN x MN Gram
    matrix, positives included (alignment and uniformity stay coupled, as in InfoNCE).

    Args:
        temperature: τ (the paper's configs: 0.5 on CIFAR/ImageNet-100, 0.1 on ImageNet-1K).
        intra_view_negatives: keep same-view negatives s_ij^{mm} in the denominator (the
            official code, default); ``False`` gives the paper's printed formula, whose
            denominator runs over cross-view pairs l != m only (positives included).
        normalize: L2-normalise the views first.
        engine: for the anchor rows' LSEs over the MN view-major rows: ``"dense"`` (one
            (M·count, MN) matrix), ``"tiled"`` (none: memory O(MN·D + tile²)), ``"auto"``
            (default: tiled above :data:`~manyview.losses.engine.DEFAULT_MIN_ENTRIES` of
            its entries) or an :class:`~manyview.losses.engine.EngineConfig`.

    At M = 2 this is InfoNCE with the arithmetic mean of the two anchors' partition
    functions instead of the geometric one (so it is >= NT-Xent).

    Inputs: ``views`` (N, M, D) or M tensors (N, D). Output: a 0-dim tensor.
    """

    def __init__(
        self,
        temperature: float = 0.1,
        *,
        intra_view_negatives: bool = True,
        normalize: bool = True,
        engine: EngineOption = "auto",
    ) -> None:
        super().__init__(temperature, normalize=normalize, engine=engine, who="mv_infonce")
        self.intra_view_negatives = intra_view_negatives

    def compute_local(self, z: Tensor, *, offset: int, count: int, **_: Any) -> Tensor:
        n, m, _ = z.shape
        gram = instance_gram(anchors(z, offset, count)) / self.temperature  # (count, M, M)
        off = ~torch.eye(m, dtype=torch.bool, device=z.device)
        num = gram[:, off].logsumexp(dim=1)  # (count,) over ordered pairs m != l
        exclude = "self" if self.intra_view_negatives else "view"
        row_lse = view_major_lse(  # dense: one (M·count, MN) matrix
            z,
            1.0 / self.temperature,
            offset=offset,
            count=count,
            exclude=exclude,
            dense=self.tiled(m * count * m * n) is None,
            engine=self.engine,
        )
        return (row_lse.view(m, count).logsumexp(dim=0) - num).mean()
