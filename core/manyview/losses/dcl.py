"""Decoupled Contrastive Learning (Yeh, Hong, Hsu, Liu, Chen, LeCun, ECCV 2022) and its
von Mises-Fisher weighted form DCLW."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from manyview.losses.base import ContrastiveLoss, anchors, check_temperature, instance_gram
from manyview.losses.engine import EngineOption
from manyview.losses.pvc import other_instance_lse


def vmf_weights(z: Tensor, sigma: float) -> Tensor:
    """``(N, M, M)``: w_i^{ml} = 2 - N softmax_i(s_ii^{ml}/σ), the DCLW positive weights."""
    n = z.shape[0]
    return 2 - n * torch.softmax(instance_gram(z) / sigma, dim=0)


class DCL(ContrastiveLoss):
    r"""Decoupled contrastive loss: the positive is removed from the denominator.

    For anchor (i, m),

    .. math:: \ell_{im} = -\frac{1}{M-1}\sum_{l\ne m} w_i^{ml} s_{ii}^{ml}/\tau
              + \log\sum_{l,\,j\ne i} e^{s_{ij}^{ml}/\tau}

    with w = 1, averaged over the MN anchors (lightly's scale; the paper sums). Every view of
    the anchor's own instance is left out of the denominator. At M = 2 this is the paper's
    loss; for M > 2 every other view is a positive (our extension).

    Args:
        temperature: τ (default 0.1, as lightly and the reference code).
        normalize: L2-normalise the views first.
        engine: how each anchor's LSE over the other instances' views is taken (the one of
            :func:`~manyview.losses.pvc.other_instance_lse`): ``"dense"`` from the
            (MN x MN) logits, ``"tiled"`` without them in O(MN·D + tile²) memory, ``"auto"``
            (default) tiled above 2048² logits, or an
            :class:`~manyview.losses.engine.EngineConfig` (docs/losses.md, "Tiled engine").

    Inputs: ``views`` (N, M, D) or M tensors (N, D). Output: a 0-dim tensor.
    """

    def __init__(
        self, temperature: float = 0.1, *, normalize: bool = True, engine: EngineOption = "auto"
    ) -> None:
        super().__init__(temperature, normalize=normalize, engine=engine)

    def positive_weights(self, z: Tensor) -> Tensor | None:
        return None

    def compute_local(self, z: Tensor, *, offset: int, count: int, **_: Any) -> Tensor:
        n, m, _ = z.shape
        pos = instance_gram(anchors(z, offset, count)) / self.temperature  # (count, M, M)
        weights = self.positive_weights(z)  # over the whole batch (DCLW's softmax over i)
        if weights is not None:
            pos = pos * anchors(weights, offset, count)
        pos_mean = (pos.sum(-1) - pos.diagonal(dim1=1, dim2=2)) / (m - 1)  # (count, M)
        tiled = self.tiled(m * count * m * n)
        other = other_instance_lse(z, self.temperature, offset, count, tiled=tiled)
        return (other - pos_mean).mean()


class DCLW(DCL):
    r"""DCL with von Mises-Fisher weights on the positives:
    :math:`w_i = 2 - N\,\mathrm{softmax}_i(s_{ii}^{12}/\sigma)` — hard positives weigh up to
    2, easy ones below 1.

    Args:
        temperature: τ (default 0.1).
        sigma: σ of the weighting (paper: 0.5).
        detach_weights: treat the weights as constants (lightly; default ``True``).
        normalize: L2-normalise the views first.
        engine: as for :class:`DCL`.

    Inputs: ``views`` (N, M, D) or M tensors (N, D). Output: a 0-dim tensor.
    """

    def __init__(
        self,
        temperature: float = 0.1,
        *,
        sigma: float = 0.5,
        detach_weights: bool = True,
        normalize: bool = True,
        engine: EngineOption = "auto",
    ) -> None:
        super().__init__(temperature, normalize=normalize, engine=engine)
        self.sigma = check_temperature(sigma, "sigma")
        self.detach_weights = detach_weights

    def positive_weights(self, z: Tensor) -> Tensor:
        return vmf_weights(z.detach() if self.detach_weights else z, self.sigma)
