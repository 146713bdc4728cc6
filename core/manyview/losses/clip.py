"""The CLIP loss (Radford et al. 2021, "Learning Transferable Visual Models From Natural
Language Supervision"), as in open_clip's ClipLoss."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from manyview.losses.base import MultiViewLoss, check_temperature


class CLIPLoss(MultiViewLoss):
    r"""Symmetric InfoNCE between two modalities: ½[CE(rows) + CE(columns)].

    Logits are :math:`L_{ij} = e^{t}\langle u_i, v_j\rangle` with u = view 0, v = view 1; the
    matching pair is the target in both directions. With ``learnable=True`` the log scale t is
    a parameter initialised to log(1/temperature) (open_clip: log(1/0.07)) and clamped to
    [0, log(max_scale)] before each forward, which is open_clip's clamp after every optimizer
    step.

    Args:
        temperature: initial (or fixed) temperature; scale = 1/temperature.
        learnable: learn the logit scale.
        max_scale: upper clamp of the scale (open_clip: 100).
        normalize: L2-normalise the embeddings first.

    Inputs: ``views`` (N, 2, D) or [image (N, D), text (N, D)]. Output: a 0-dim tensor.

    Example::

        loss = manyview.create("loss", "clip", learnable=True)
        value = loss([image_emb, text_emb])
    """

    max_views = 2

    def __init__(
        self,
        temperature: float = 0.07,
        *,
        learnable: bool = False,
        max_scale: float = 100.0,
        normalize: bool = True,
    ) -> None:
        super().__init__(normalize=normalize)
        check_temperature(temperature)
        self.max_scale = float(max_scale)
        init = torch.tensor(math.log(1.0 / temperature), dtype=torch.float32)
        if learnable:
            self.logit_scale = nn.Parameter(init)
        else:
            self.register_buffer("logit_scale", init)
        self.learnable = learnable

    @property
    def temperature(self) -> float:
        return float(torch.exp(-self.logit_scale.detach()))

    def clamp_(self) -> None:
        """Clamp the log scale to [0, log(max_scale)] in place (open_clip's clamp)."""
        with torch.no_grad():
            self.logit_scale.clamp_(0.0, math.log(self.max_scale))

    def compute(self, z: Tensor, **_: Any) -> Tensor:
        if self.learnable:
            self.clamp_()
        scale = self.logit_scale.to(z.dtype).exp()
        logits = scale * (z[:, 0] @ z[:, 1].T)
        target = torch.arange(z.shape[0], device=z.device)
        return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
