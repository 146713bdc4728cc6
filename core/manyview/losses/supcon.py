"""Supervised Contrastive Learning (Khosla, Teterwak, Wang, Sarna, Tian, Isola, Maschinot,
Liu, Krishnan, NeurIPS 2020)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from manyview import distributed
from manyview.losses.base import MultiViewLoss, anchor_rows, check_temperature, view_major


class SupCon(MultiViewLoss):
    r"""Supervised contrastive loss over M views, L_out (default) or L_in.

    Rows a = (i, m) of the MN x MN similarity matrix; A(a) = every other row; positives
    P(a) = rows of the same label (by ``labels``), of a positive instance (by ``mask``), or of
    the same instance (neither given: SimCLR). With log-probabilities
    :math:`\log p_{ap} = s_{ap}/\tau - \log\sum_{c\in A(a)} e^{s_{ac}/\tau}`:

    - L_out: :math:`-\frac{1}{|P(a)|}\sum_{p\in P(a)}\log p_{ap}` (recommended by the paper);
    - L_in: :math:`-\log\frac{1}{|P(a)|}\sum_{p\in P(a)} p_{ap}`.

    Averaged over anchors (all MN rows, or view 0 only with ``anchors="one"``); an anchor
    without positives contributes 0 and still counts, as in the reference code.

    Args:
        temperature: τ (paper: 0.1).
        variant: ``"out"`` (default) or ``"in"``.
        base_temperature: ``None`` (default) for the paper's formula; a number multiplies the
            loss by τ/base_temperature as SupContrast does (its 0.07).
        anchors: ``"all"`` (default) or ``"one"``.
        normalize: L2-normalise the views first.

    Inputs: ``views`` (N, M, D) or M tensors (N, D); ``labels`` (N,) integer classes, or
    ``mask`` (N, N) bool — ``mask[i, j]`` makes instance j a positive of i. Output: 0-dim.

    Under torch.distributed (see :class:`~manyview.losses.base.MultiViewLoss`) the labels
    are gathered and each rank computes its own anchors; a ``mask`` is not gathered: pass
    the global batch's (G, G) mask, the same on every rank.

    Example::

        loss = manyview.create("loss", "supcon", temperature=0.1)
        value = loss(torch.randn(64, 2, 128), labels=torch.randint(0, 10, (64,)))
    """

    min_views = 1

    def __init__(
        self,
        temperature: float = 0.1,
        *,
        variant: str = "out",
        base_temperature: float | None = None,
        anchors: str = "all",
        normalize: bool = True,
    ) -> None:
        super().__init__(normalize=normalize)
        if variant not in ("out", "in"):
            raise ValueError(f"supcon: variant must be 'out' or 'in', got {variant!r}")
        if anchors not in ("all", "one"):
            raise ValueError(f"supcon: anchors must be 'all' or 'one', got {anchors!r}")
        self.temperature = check_temperature(temperature)
        self.base_temperature = (
            None
            if base_temperature is None
            else check_temperature(base_temperature, "base_temperature")
        )
        self.variant = variant
        self.anchors = anchors

    def instance_mask(
        self, n: int, m: int, labels: Tensor | None, mask: Tensor | None, device: torch.device
    ) -> Tensor:
        if labels is not None and mask is not None:
            raise ValueError("supcon: pass labels or mask, not both")
        if mask is not None:
            if not isinstance(mask, Tensor) or mask.shape != (n, n):
                shape = tuple(mask.shape) if isinstance(mask, Tensor) else type(mask).__name__
                hint = (
                    " (under torch.distributed: the global batch's mask, the same on every rank)"
                    if distributed.is_distributed()
                    else ""
                )
                raise ValueError(
                    f"supcon: mask must be a tensor of shape ({n}, {n}){hint}, got {shape}"
                )
            return mask.to(device=device, dtype=torch.bool)
        if labels is not None:
            return labels[:, None] == labels[None, :]
        if m < 2:
            raise ValueError("supcon with one view needs labels= or mask= to define positives")
        return torch.eye(n, dtype=torch.bool, device=device)

    def compute_local(
        self,
        z: Tensor,
        *,
        offset: int,
        count: int,
        labels: Tensor | None = None,
        mask: Tensor | None = None,
        **_: Any,
    ) -> Tensor:
        n, m, _ = z.shape
        flat = view_major(z)
        if offset == 0 and count == n:  # every instance is an anchor
            logits = flat @ flat.T / self.temperature
            eye = torch.eye(m * n, dtype=torch.bool, device=z.device)
        else:  # the anchors' rows against every column; eye marks each anchor's own entry
            rows, ids = anchor_rows(z, offset, count)
            logits = rows @ flat.T / self.temperature
            eye = ids[:, None] == torch.arange(m * n, device=z.device)[None, :]
        lse = logits.masked_fill(eye, float("-inf")).logsumexp(dim=1)  # over A(a)
        same = self.instance_mask(n, m, labels, mask, z.device)[offset : offset + count]
        pos = same.repeat(m, m) & ~eye
        num_pos = pos.sum(dim=1)
        if self.variant == "out":
            mean_pos = torch.where(pos, logits, 0).sum(dim=1) / num_pos.clamp(min=1)
            per_anchor = lse - mean_pos
        else:
            pos_lse = logits.masked_fill(~pos, float("-inf")).logsumexp(dim=1)
            log_num_pos = num_pos.clamp(min=1).to(z.dtype).log()
            per_anchor = lse - pos_lse + log_num_pos
        per_anchor = torch.where(num_pos > 0, per_anchor, 0)
        if self.anchors == "one":
            per_anchor = per_anchor[:count]
        loss = per_anchor.mean()
        if self.base_temperature is not None:
            loss = loss * (self.temperature / self.base_temperature)
        return loss
