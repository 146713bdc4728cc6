"""Supervised Contrastive Learning (Khosla, Teterwak, Wang, Sarna, Tian, Isola, Maschinot,
Liu, Krishnan, NeurIPS 2020)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from manyview import distributed
from manyview.losses.base import (
    ContrastiveLoss,
    anchor_rows,
    check_temperature,
    instance_gram,
    view_major,
)
from manyview.losses.engine import EngineOption, dense_logsumexp, tiled_logsumexp


class SupCon(ContrastiveLoss):
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
        engine: ``"dense"`` (the MN x MN logits), ``"tiled"``, ``"auto"`` (default: tiled
            above :data:`~manyview.losses.engine.DEFAULT_MIN_ENTRIES` dense logits) or an
            :class:`~manyview.losses.engine.EngineConfig`. The tiled
            form gives the same value and gradient in O(MN·D + tile²) memory: the log
            partition by :func:`~manyview.losses.engine.tiled_logsumexp`, the positives'
            sum as <z_a, per-class (or per-instance) sums of the embeddings>, and L_in's
            positive LSE one tiled call per class. It does not support ``variant="in"``
            with a ``mask`` (``"auto"`` then stays dense).

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
    inputs = ("labels",)

    def __init__(
        self,
        temperature: float = 0.1,
        *,
        variant: str = "out",
        base_temperature: float | None = None,
        anchors: str = "all",
        normalize: bool = True,
        engine: EngineOption = "auto",
    ) -> None:
        super().__init__(temperature, normalize=normalize, engine=engine, who="supcon")
        if variant not in ("out", "in"):
            raise ValueError(f"supcon: variant must be 'out' or 'in', got {variant!r}")
        if anchors not in ("all", "one"):
            raise ValueError(f"supcon: anchors must be 'all' or 'one', got {anchors!r}")
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
            if mask.dtype != torch.bool and not bool(((mask == 0) | (mask == 1)).all()):
                odd = [f"{v:.3g}" for v in mask[(mask != 0) & (mask != 1)].flatten()[:3].tolist()]
                raise ValueError(
                    f"supcon: mask must be binary (bool or 0/1), got values such as {', '.join(odd)}; "
                    "SupCon does not weight positives by the mask's values (SupContrast's "
                    "code would): pass mask > 0, or weight the instances another way"
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
        by_sums = self.variant == "out" or mask is None  # positives without the logits
        if self.engine.use_tiled(m * count * m * n):
            if by_sums:
                lse_fn = functools.partial(tiled_logsumexp, **self.engine.lse_options())
                return self._compute_by_lse(z, offset, count, labels, mask, lse_fn)
            if self.engine.mode == "tiled":
                raise ValueError(
                    "supcon: engine='tiled' does not support variant='in' with mask=; pass "
                    "labels= or use engine='dense'"
                )
        elif by_sums:  # one (rows x MN) matrix, its softmax kept: dense_logsumexp
            return self._compute_by_lse(z, offset, count, labels, mask, dense_logsumexp)
        # L_in with an arbitrary mask: the logits matrix and its masks
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
            positives = torch.where(pos, logits, 0).sum(dim=1)
        else:
            positives = logits.masked_fill(~pos, float("-inf")).logsumexp(dim=1)
        if self.anchors == "one":  # view 0's rows come first
            lse, positives, num_pos = lse[:count], positives[:count], num_pos[:count]
        return self._reduce(lse, positives, num_pos)

    def _reduce(self, lse: Tensor, positives: Tensor, num_pos: Tensor) -> Tensor:
        """The loss from each anchor's log partition over A(a), its positives (L_out: the sum
        of s_ap/τ over P(a); L_in: their LSE) and |P(a)|: the mean over the anchors (0 for an
        anchor without positives), times τ/base_temperature when that is set."""
        if self.variant == "out":
            per_anchor = lse - positives / num_pos.clamp(min=1)
        else:
            per_anchor = lse - positives + num_pos.clamp(min=1).to(lse.dtype).log()
        per_anchor = torch.where(num_pos > 0, per_anchor, 0)
        loss = per_anchor.mean()
        if self.base_temperature is not None:
            loss = loss * (self.temperature / self.base_temperature)
        return loss

    def _compute_by_lse(
        self,
        z: Tensor,
        offset: int,
        count: int,
        labels: Tensor | None,
        mask: Tensor | None,
        lse_fn: Callable[..., Tensor],
    ) -> Tensor:
        """:meth:`compute_local` from row log-sum-exps alone: the partition by ``lse_fn``
        (:func:`~manyview.losses.engine.tiled_logsumexp`: no (rows x MN) matrix;
        :func:`~manyview.losses.engine.dense_logsumexp`: one), the positives' sums from
        per-class (or per-instance) sums of the embeddings."""
        n, m, d = z.shape
        dev = z.device
        scale = 1.0 / self.temperature
        if mask is not None or (labels is None and m < 2):
            mask = self.instance_mask(n, m, labels, mask, dev)  # the checks (no new N x N)
        flat = view_major(z)
        local = torch.arange(offset, offset + count, device=dev)
        views = 1 if self.anchors == "one" else m  # the anchor views that count
        if views == 1:
            rows = z[offset : offset + count, 0]
        elif offset == 0 and count == n:
            rows = flat
        else:
            rows = view_major(z[offset : offset + count])
        row_ids = (torch.arange(views, device=dev)[:, None] * n + local).reshape(-1)
        col_ids = torch.arange(m * n, device=dev)
        lse = lse_fn(rows, flat, scale, row_ids=row_ids, col_ids=col_ids)
        lse = lse.view(views, count)  # log partition over A(a)

        # Σ_{p ∈ P(a)} s_ap = <z_a, Σ_{positive instances j} Σ_l z_j^l> - [a ∈ its own set] s_aa
        totals = z.sum(dim=1)  # (N, D)
        if mask is not None:
            own = mask[offset : offset + count]  # (count, N)
            step = self.engine.tile[0]  # rows of the (count, N) mask per matmul
            pos_total = torch.cat(
                [own[c : c + step].to(z.dtype) @ totals for c in range(0, count, step)]
            )
            pos_count = own.sum(dim=1)
            self_pos = own[torch.arange(count, device=dev), local]
        elif labels is not None:
            classes, inverse = labels.unique(return_inverse=True)
            class_total = totals.new_zeros(classes.shape[0], d).index_add(0, inverse, totals)
            pos_total = class_total[inverse[local]]
            pos_count = torch.bincount(inverse, minlength=classes.shape[0])[inverse[local]]
            self_pos = torch.ones(count, dtype=torch.bool, device=dev)
        else:
            pos_total = totals[local]
            pos_count = torch.ones(count, dtype=torch.long, device=dev)
            self_pos = torch.ones(count, dtype=torch.bool, device=dev)
        anchor = rows.view(views, count, d)
        self_sim = (anchor * anchor).sum(dim=-1)  # (views, count)
        pos_sum = ((anchor * pos_total).sum(dim=-1) - self_pos.to(z.dtype) * self_sim) * scale
        num_pos = (m * pos_count - self_pos.long()).expand(views, count)

        if self.variant == "out":
            return self._reduce(lse, pos_sum, num_pos)
        pos_lse = self._positive_lse(z, rows, row_ids, offset, count, views, labels, lse_fn)
        return self._reduce(lse, pos_lse, num_pos)

    def _positive_lse(
        self,
        z: Tensor,
        rows: Tensor,
        row_ids: Tensor,
        offset: int,
        count: int,
        views: int,
        labels: Tensor | None,
        lse_fn: Callable[..., Tensor],
    ) -> Tensor:
        """``(views, count)``: LSE over P(a) of s_ap/τ for L_in, without a (rows x MN)
        matrix: from the instance Grams (SimCLR positives) or one ``lse_fn`` per class."""
        m = z.shape[1]
        scale = 1.0 / self.temperature
        if labels is None:  # P(a) = the anchor's other views
            gram = instance_gram(z[offset : offset + count]) * scale  # (count, M, M)
            eye = torch.eye(m, dtype=torch.bool, device=z.device)
            return gram.masked_fill(eye, float("-inf")).logsumexp(dim=-1).T[:views]
        # Rows and columns sorted by label: each class is one contiguous block of both.
        row_label = labels[offset : offset + count].repeat(views)
        col_label = labels.repeat(m)
        row_order = torch.argsort(row_label, stable=True)
        col_order = torch.argsort(col_label, stable=True)
        row_keys, row_sizes = torch.unique_consecutive(row_label[row_order], return_counts=True)
        col_keys, col_sizes = torch.unique_consecutive(col_label[col_order], return_counts=True)
        col_starts = torch.cumsum(col_sizes, 0) - col_sizes
        where = torch.searchsorted(col_keys, row_keys)  # every anchor's class has columns
        flat = view_major(z)
        values = []
        r0 = 0
        for size, c0, c_size in zip(
            row_sizes.tolist(),
            col_starts[where].tolist(),
            col_sizes[where].tolist(),
            strict=True,
        ):
            r_idx = row_order[r0 : r0 + size]
            c_idx = col_order[c0 : c0 + c_size]
            values.append(
                lse_fn(rows[r_idx], flat[c_idx], scale, row_ids=row_ids[r_idx], col_ids=c_idx)
            )
            r0 += size
        sorted_lse = torch.cat(values)
        return sorted_lse[torch.argsort(row_order)].view(views, count)
