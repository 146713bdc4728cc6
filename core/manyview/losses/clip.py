"""The CLIP loss (Radford et al. 2021, "Learning Transferable Visual Models From Natural
Language Supervision"), as in open_clip's ClipLoss."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from manyview.losses.base import MultiViewLoss, check_temperature
from manyview.losses.engine import (
    EngineConfig,
    EngineOption,
    tiled_logsumexp,
    tiled_logsumexp_rows_cols,
)

TILED_FACTOR = 0.125
"""``engine="auto"`` tiles CLIP above ``TILED_FACTOR`` x the engine's ``min_entries`` logits
(N > 724 with the default): its one-walk tiled form beats the dense one earlier than the
one-sided losses' do (docs/benchmarks.md)."""


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
        engine: ``"dense"`` (the logits matrix), ``"tiled"`` (the same value and gradient
            from :func:`~manyview.losses.engine.tiled_logsumexp`, memory O(N·D + tile²)),
            ``"auto"`` (default: tiled above an eighth of the ``min_entries`` dense logits,
            :data:`~manyview.losses.engine.DEFAULT_MIN_ENTRIES`: N > 724) or an
            :class:`~manyview.losses.engine.EngineConfig`.

    The tiled form takes the row and the column LSEs of each tile in one walk
    (:func:`~manyview.losses.engine.tiled_logsumexp_rows_cols`: three tile products in all);
    the local-anchors form under torch.distributed, and the Triton kernels on CUDA, take them
    in two one-sided passes.

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
        engine: EngineOption = "auto",
    ) -> None:
        super().__init__(normalize=normalize)
        check_temperature(temperature)
        self.engine = EngineConfig.parse(engine, "clip")
        self.max_scale = float(max_scale)
        self.learnable = learnable
        self.logit_scale: nn.Parameter | float
        if learnable:
            self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)))
        else:  # a Python float: exact in float64 and untouched by module.to(dtype)
            self.logit_scale = math.log(1.0 / temperature)

    @property
    def temperature(self) -> float:
        scale = self.logit_scale
        return math.exp(-(scale.item() if isinstance(scale, Tensor) else scale))

    def clamp_(self) -> None:
        """Clamp the learnable log scale to [0, log(max_scale)] in place (open_clip's clamp)."""
        if isinstance(self.logit_scale, Tensor):
            with torch.no_grad():
                self.logit_scale.clamp_(0.0, math.log(self.max_scale))

    def compute_local(self, z: Tensor, *, offset: int, count: int, **_: Any) -> Tensor:
        """½[mean over the anchors' image rows of CE against every text + mean over the
        anchors' text columns of CE against every image] (each rank's share of the
        symmetric loss under torch.distributed)."""
        if isinstance(self.logit_scale, Tensor):
            self.clamp_()
            scale = self.logit_scale.to(z.dtype).exp()
        else:
            scale = math.exp(self.logit_scale)
        n = z.shape[0]
        whole = offset == 0 and count == n
        if self.engine.use_tiled(n * n if whole else 2 * count * n, factor=TILED_FACTOR):
            options = self.engine.lse_options()
            u, v = z[:, 0], z[:, 1]
            u_a, v_a = (u, v) if whole else (u[offset : offset + count], v[offset : offset + count])
            positive = scale * (u_a * v_a).sum(dim=-1)  # (count,) the matching pairs' logits
            if whole:  # the rows and the columns of one matrix: one walk over its tiles
                row_lse, col_lse = tiled_logsumexp_rows_cols(u, v, scale, **options)
                return 0.5 * ((row_lse - positive).mean() + (col_lse - positive).mean())
            rows = tiled_logsumexp(u_a, v, scale, **options) - positive  # image anchors
            cols = tiled_logsumexp(v_a, u, scale, **options) - positive  # text anchors
            return 0.5 * (rows.mean() + cols.mean())
        if whole:  # every instance is an anchor
            logits = scale * (z[:, 0] @ z[:, 1].T)
            target = torch.arange(z.shape[0], device=z.device)
            return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
        u, v = z[:, 0], z[:, 1]
        rows = scale * (u[offset : offset + count] @ v.T)  # (count, N): image anchors
        cols = scale * (v[offset : offset + count] @ u.T)  # (count, N): text anchors
        target = torch.arange(offset, offset + count, device=z.device)
        return 0.5 * (F.cross_entropy(rows, target) + F.cross_entropy(cols, target))
