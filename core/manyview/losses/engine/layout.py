"""The view-major layout the multi-view losses share: the M·N rows of an (N, M, D) batch
ordered view by view (row ``m*N + i`` is view m of instance i), and the row LSEs of a window
of anchors against all of them under an exclusion rule (:func:`view_major_lse`)."""

from __future__ import annotations

import torch
from torch import Tensor

from manyview.losses.engine.config import EngineConfig
from manyview.losses.engine.dense import dense_logsumexp
from manyview.losses.engine.inputs import Scale
from manyview.losses.engine.lse import tiled_logsumexp

EXCLUDES = ("self", "instance", "view")


def view_major_lse(
    z: Tensor,
    scale: Scale,
    *,
    offset: int = 0,
    count: int | None = None,
    exclude: str = "self",
    dense: bool = False,
    engine: EngineConfig | None = None,
) -> Tensor:
    """Row LSEs of the view-major anchors of instances ``offset .. offset+count-1``
    (default: all) of ``z`` (N, M, D) against all M·N view-major rows of ``z``: by
    :func:`~manyview.losses.engine.lse.tiled_logsumexp` with ``engine``'s tile and backend
    (default :class:`EngineConfig`), or with ``dense=True`` by
    :func:`~manyview.losses.engine.dense.dense_logsumexp`.

    Returns (M·count,), row ``m*count + k`` for view m of instance ``offset + k``:
    ``log Σ_c exp(scale·<anchor, row c>)`` over the columns c that ``exclude`` keeps —
    ``"self"``: every column but the anchor's own (global id ``m*N + offset + k``);
    ``"instance"``: no view of the anchor's own instance; ``"view"``: no column of the
    anchor's own view. ``scale`` may be a number, a 0-dim or an (M·count,) tensor.
    """
    if exclude not in EXCLUDES:
        raise ValueError(
            f"view_major_lse: exclude must be 'self', 'instance' or 'view', got {exclude!r}"
        )
    n, m, _ = z.shape
    if count is None:
        count = n
    dev = z.device
    flat = z.transpose(0, 1).reshape(m * n, -1)
    whole = offset == 0 and count == n
    rows = flat if whole else z[offset : offset + count].transpose(0, 1).reshape(m * count, -1)
    local = torch.arange(offset, offset + count, device=dev)
    views = torch.arange(m, device=dev)
    if exclude == "self":
        row_ids = (views[:, None] * n + local).reshape(-1)
        col_ids = torch.arange(m * n, device=dev)
    elif exclude == "instance":
        row_ids = local.repeat(m)
        col_ids = torch.arange(n, device=dev).repeat(m)
    else:  # "view"
        row_ids = views.repeat_interleave(count)
        col_ids = views.repeat_interleave(n)
    if dense:
        return dense_logsumexp(rows, flat, scale, row_ids=row_ids, col_ids=col_ids)
    options = (engine or EngineConfig()).lse_options()
    return tiled_logsumexp(rows, flat, scale, row_ids=row_ids, col_ids=col_ids, **options)
