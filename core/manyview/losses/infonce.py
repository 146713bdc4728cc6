"""InfoNCE / NT-Xent (Chen et al. 2020, "A Simple Framework for Contrastive Learning of
Visual Representations"), multi-positive for M > 2 views."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from manyview.losses.base import ContrastiveLoss, anchors, instance_gram
from manyview.losses.engine import EngineOption, view_major_lse


def positive_mean(z: Tensor, temperature: float) -> Tensor:
    """``(N, M)``: for each anchor (i, m), the mean of s_ii^{ml}/τ over the other views l."""
    gram = instance_gram(z) / temperature
    m = z.shape[1]
    return (gram.sum(-1) - gram.diagonal(dim1=1, dim2=2)) / (m - 1)


class InfoNCE(ContrastiveLoss):
    r"""NT-Xent, the SimCLR loss; for M > 2 views every other view is a positive.

    For anchor a = (i, m) among the MN rows,

    .. math:: \ell_a = -\frac{1}{M-1}\sum_{l\ne m} s_{ii}^{ml}/\tau
              + \log\sum_{c\ne a} \exp(s_{ac}/\tau)

    and the loss is the mean over all MN anchors (the paper's 1/2N at M = 2; the official TF
    code reports twice this). The denominator holds the positives, every intra-view and every
    cross-view negative. At M > 2 this is SupCon's L_out with instance identity as the label.

    Args:
        temperature: τ (SimCLR's run default 0.1).
        normalize: L2-normalise the views first.
        engine: ``"dense"`` builds the (MN x MN) logits; ``"tiled"`` computes the same value
            and gradient with :func:`~manyview.losses.engine.tiled_logsumexp` in
            O(MN·D + tile²) memory; ``"auto"`` (default) tiles above
            :data:`~manyview.losses.engine.DEFAULT_MIN_ENTRIES` logits; an
            :class:`~manyview.losses.engine.EngineConfig` sets the mode, tile, backend and
            threshold.

    Inputs: ``views`` (N, M, D) or M tensors (N, D). Output: a 0-dim tensor.

    Example::

        loss = manyview.create("loss", "infonce", temperature=0.1)
        value = loss(torch.randn(32, 2, 128))
    """

    def __init__(
        self, temperature: float = 0.1, *, normalize: bool = True, engine: EngineOption = "auto"
    ) -> None:
        super().__init__(temperature, normalize=normalize, engine=engine, who="infonce")

    def compute_local(self, z: Tensor, *, offset: int, count: int, **_: Any) -> Tensor:
        n, m, _ = z.shape
        dense = self.tiled(m * count * m * n) is None  # dense: one (M·count, MN) matrix
        lse = view_major_lse(
            z, 1.0 / self.temperature, offset=offset, count=count, dense=dense, engine=self.engine
        )
        pos = positive_mean(anchors(z, offset, count), self.temperature)  # (count, M)
        return (lse.view(m, count).T - pos).mean()
