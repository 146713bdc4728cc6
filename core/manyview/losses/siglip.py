"""The sigmoid loss for language-image pre-training (Zhai et al. 2023, "Sigmoid Loss for
Language Image Pre-Training")."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from manyview.losses.base import MultiViewLoss
from manyview.options import check_number, check_positive


class SigLIPLoss(MultiViewLoss):
    r"""Pairwise sigmoid loss: :math:`-\frac1N\sum_{i,j}\log\sigma(y_{ij}(e^{t}\langle u_i,
    v_j\rangle + b))` with :math:`y_{ij} = 1` for matching pairs and -1 otherwise.

    The log scale t and the bias b are parameters initialised as in the paper
    (scale 10, bias -10); ``learnable=False`` keeps them fixed.

    Args:
        scale: initial scale e^t.
        bias: initial bias b.
        learnable: learn scale and bias.
        normalize: L2-normalise the embeddings first.

    Inputs: ``views`` (N, 2, D) or [image (N, D), text (N, D)]. Output: a 0-dim tensor.
    """

    max_views = 2

    def __init__(
        self,
        scale: float = 10.0,
        bias: float = -10.0,
        *,
        learnable: bool = True,
        normalize: bool = True,
    ) -> None:
        super().__init__(normalize=normalize)
        scale = check_positive(scale, "scale", "siglip")
        bias = check_number(bias, "bias", "siglip")
        self.logit_scale: nn.Parameter | float
        self.logit_bias: nn.Parameter | float
        if learnable:
            self.logit_scale = nn.Parameter(torch.tensor(math.log(scale)))
            self.logit_bias = nn.Parameter(torch.tensor(float(bias)))
        else:  # Python floats: exact in float64 and untouched by module.to(dtype)
            self.logit_scale, self.logit_bias = math.log(scale), float(bias)

    def compute_local(self, z: Tensor, *, offset: int, count: int, **_: Any) -> Tensor:
        """The rows (images) of instances ``offset .. offset+count-1`` against every text,
        summed and divided by ``count``."""
        n = z.shape[0]
        if isinstance(self.logit_scale, Tensor):
            scale, bias = self.logit_scale.to(z.dtype).exp(), self.logit_bias.to(z.dtype)
        else:
            scale, bias = math.exp(self.logit_scale), self.logit_bias
        if offset == 0 and count == n:
            logits = scale * (z[:, 0] @ z[:, 1].T) + bias
            sign = 2 * torch.eye(n, dtype=z.dtype, device=z.device) - 1
        else:
            logits = scale * (z[offset : offset + count, 0] @ z[:, 1].T) + bias  # (count, N)
            sign = torch.full((count, n), -1.0, dtype=z.dtype, device=z.device)
            k = torch.arange(count, device=z.device)
            sign[k, offset + k] = 1.0
        return -F.logsigmoid(sign * logits).sum() / count
