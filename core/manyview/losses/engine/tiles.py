"""Exact tiled ("blockwise") log-sum-exp over masked, scaled inner products.

The InfoNCE family needs, per anchor row, one log-partition function over a row of the
(R x C) logits matrix. This module computes it without ever building that matrix: the
forward pass walks row tiles x column tiles and merges each tile's LSE into a running one
(an online logsumexp, as in Inf-CL: Cheng et al., "Breaking the Memory Barrier: Near
Infinite Batch Size Scaling for Contrastive Loss", CVPR 2025, arXiv 2410.17243, and
FlashAttention); it saves only the inputs and the (R,) result, and the backward pass
recomputes each tile's probabilities P_ij = exp(x_ij - lse_i). Memory is
O((R + C)·D + tile_r·tile_c) instead of O(R·C), with the dense form's value and gradient.

The losses call :func:`tiled_logsumexp` when their ``engine`` is ``"tiled"``, or ``"auto"``
and the dense logits would hold more than :data:`TILED_MIN_ENTRIES` entries
(``losses.md`` §13.3 gives the decomposition of each loss into such row statistics).

On CUDA, ``backend="auto"`` uses the fused kernels of ``manyview.losses.tiled_triton``
when that module imports and reports ``available()``; the PyTorch tiles below are the
reference and the CPU path.
"""

from __future__ import annotations

import difflib
import functools
import os
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

TILE_ROWS: int = 1024
"""Default rows per tile of the PyTorch path (read at call time; tests may lower it)."""
TILE_COLS: int = 4096
"""Default columns per tile of the PyTorch path (read at call time; tests may lower it).

A 1024 x 4096 float32 tile is 16 MB. Measured on a 2-core Xeon (float32, R = C = 8192,
D = 128, forward + backward of the primitive, one thread): 1024 x 4096 ~0.8-1.0 s against
0.6-0.7 s for 512 x 1024 and 1.6 s dense; the larger tile is kept because every tile costs
about ten OpenMP parallel regions, which an oversubscribed CPU makes expensive (two threads
sharing one free core: 1024 x 4096 2.8 s, 512 x 1024 10.5 s, dense 1.6 s)."""
TILED_MIN_ENTRIES: int = 2048 * 2048
"""``engine="auto"`` tiles a loss whose dense logits would hold more entries than this.

Measured on the same CPU (one thread, InfoNCE forward + backward, D = 128, float32): the
tiled form is as fast as the dense one at 1536 x 1536 logits and faster above (2048²:
0.07 s vs 0.08 s, 4096²: 0.26 s vs 0.42 s, 8192²: 0.8 s vs 1.6 s), because the dense form
allocates, writes and page-faults several R x C buffers per step. Its memory stays at
O((R + C)·D + tile_r·tile_c) while the dense form's grows as R·C (1.1 GB of peak RSS at
8192 x 8192, against 0.1-0.17 GB). On an oversubscribed CPU (more torch threads than free
cores) the tiled form's many small parallel regions make it slower (8192²: 3.1 s vs 2.0 s);
set ``torch.set_num_threads`` to the free cores."""

ENGINES = ("auto", "dense", "tiled")
BACKENDS = ("auto", "torch", "triton")

Scale = float | Tensor


# --------------------------------------------------------------------------------------------
# per-tile math (PyTorch); a Triton implementation with the same contract can replace it
# --------------------------------------------------------------------------------------------


def _id_ranges(ids: Tensor, tile: int) -> list[tuple[int, int]]:
    """(min, max) of ``ids`` in each consecutive tile, to skip masking tiles that cannot
    hold an excluded entry."""
    n = ids.shape[0]
    if n == 0:
        return []
    pad = (-n) % tile
    lo = torch.nn.functional.pad(ids, (0, pad), value=int(ids.max())).view(-1, tile).amin(1)
    hi = torch.nn.functional.pad(ids, (0, pad), value=int(ids.min())).view(-1, tile).amax(1)
    return list(zip(lo.tolist(), hi.tolist(), strict=True))


def _masks(
    row_ids: Tensor | None, col_ids: Tensor | None, tile_r: int, tile_c: int
) -> Callable[[int, int], bool]:
    """``overlaps(ri, ci)``: whether row tile ri and column tile ci may share an id."""
    if row_ids is None or col_ids is None:
        return lambda ri, ci: False
    rows, cols = _id_ranges(row_ids, tile_r), _id_ranges(col_ids, tile_c)
    return lambda ri, ci: rows[ri][0] <= cols[ci][1] and cols[ci][0] <= rows[ri][1]


def _exclude(x: Tensor, row_ids: Tensor, col_ids: Tensor) -> None:
    """Set the entries of the (rows, cols) tile ``x`` whose row and column ids match to -inf,
    in place."""
    x.masked_fill_(row_ids[:, None] == col_ids[None, :], float("-inf"))


def _tile_lse(x: Tensor, dim: int) -> Tensor:
    """logsumexp of a tile along ``dim``, overwriting ``x``; -inf where every entry is."""
    top = x.amax(dim=dim, keepdim=True)
    shift = torch.where(torch.isfinite(top), top, 0.0)
    return x.sub_(shift).exp_().sum(dim=dim).log_().add_(shift.squeeze(dim))


def torch_lse_forward(
    a: Tensor,
    b: Tensor,
    scale_vec: Tensor,
    row_ids: Tensor | None,
    col_ids: Tensor | None,
    tile_r: int,
    tile_c: int,
) -> Tensor:
    """Row-wise masked log-sum-exp, one (tile_r x tile_c) block at a time.

    Args:
        a: (R, D) rows; b: (C, D) columns, same dtype and device.
        scale_vec: (R,) per-row scale (1/τ_i).
        row_ids, col_ids: (R,) and (C,) int64, or both ``None``: entry (i, j) is left out
            of the sum when ``row_ids[i] == col_ids[j]``.
        tile_r, tile_c: tile sizes; memory is O(tile_r·tile_c) beyond the inputs.

    Returns:
        (R,) ``lse_i = log Σ_{j kept} exp(scale_i <a_i, b_j>)``; ``-inf`` for a row whose
        every entry is left out. No autograd graph is recorded.
    """
    rows, cols = a.shape[0], b.shape[0]
    lse = a.new_full((rows,), float("-inf"))
    overlaps = _masks(row_ids, col_ids, tile_r, tile_c)
    with torch.no_grad():
        for ri, r0 in enumerate(range(0, rows, tile_r)):
            r1 = min(r0 + tile_r, rows)
            scaled = a[r0:r1] * scale_vec[r0:r1, None]
            acc = lse[r0:r1]
            for ci, c0 in enumerate(range(0, cols, tile_c)):
                c1 = min(c0 + tile_c, cols)
                x = scaled @ b[c0:c1].T  # (tr, tc) logits
                if overlaps(ri, ci):
                    _exclude(x, row_ids[r0:r1], col_ids[c0:c1])  # type: ignore[index]
                torch.logaddexp(acc, _tile_lse(x, 1), out=acc)
    return lse


def torch_lse_backward(
    a: Tensor,
    b: Tensor,
    scale_vec: Tensor,
    row_ids: Tensor | None,
    col_ids: Tensor | None,
    lse: Tensor,
    grad_lse: Tensor,
    tile_r: int,
    tile_c: int,
) -> tuple[Tensor, Tensor, Tensor]:
    """Gradients of ``Σ_i grad_lse_i · lse_i``, recomputing each tile.

    With P_ij = exp(scale_i s_ij - lse_i) on the kept entries (0 elsewhere, and on rows
    whose lse is ``-inf``) and W = grad_lse_i · P_ij:

    - grad_a = scale ⊙ (W @ b)   (R, D)
    - grad_b = (scale ⊙ W)ᵀ @ a  (C, D)
    - grad_scale_i = Σ_j W_ij s_ij = <a_i, (W @ b)_i>   (R,)

    Arguments as :func:`torch_lse_forward`, plus ``lse`` (R,) from it and ``grad_lse`` (R,).
    Returns ``(grad_a, grad_b, grad_scale_vec)``.
    """
    rows, cols = a.shape[0], b.shape[0]
    grad_a = torch.zeros_like(a)
    grad_b = torch.zeros_like(b)
    grad_scale = torch.zeros_like(lse)
    # A row with every entry left out has lse = -inf: shift by +inf so that P = 0 there.
    lse = lse.masked_fill(lse == float("-inf"), float("inf"))
    overlaps = _masks(row_ids, col_ids, tile_r, tile_c)
    with torch.no_grad():
        for ri, r0 in enumerate(range(0, rows, tile_r)):
            r1 = min(r0 + tile_r, rows)
            scale = scale_vec[r0:r1, None]
            scaled = a[r0:r1] * scale
            # W = g ⊙ P: the row factor g is applied to the (tile_r, D) operands and
            # results, never to the (tile_r, tile_c) tile.
            weighted = scaled * grad_lse[r0:r1, None]
            pb = a.new_zeros((r1 - r0, a.shape[1]))  # Σ_j P_ij b_j
            for ci, c0 in enumerate(range(0, cols, tile_c)):
                c1 = min(c0 + tile_c, cols)
                x = scaled @ b[c0:c1].T
                if overlaps(ri, ci):
                    _exclude(x, row_ids[r0:r1], col_ids[c0:c1])  # type: ignore[index]
                p = x.sub_(lse[r0:r1, None]).exp_()
                pb.addmm_(p, b[c0:c1])
                grad_b[c0:c1].addmm_(p.T, weighted)
            wb = pb * grad_lse[r0:r1, None]  # Σ_j W_ij b_j
            grad_a[r0:r1] = wb * scale
            grad_scale[r0:r1] = (a[r0:r1] * wb).sum(dim=1)
    return grad_a, grad_b, grad_scale


def torch_lse_moment(
    a: Tensor,
    b: Tensor,
    scale_vec: Tensor,
    row_ids: Tensor | None,
    col_ids: Tensor | None,
    lse: Tensor,
    tile_r: int,
    tile_c: int,
) -> Tensor:
    """(R,) ``Σ_j P_ij s_ij``: the mean similarity under each row's softmax (no graph).

    ``P_ij = exp(scale_i s_ij - lse_i)`` on the kept entries; this is d lse_i / d scale_i,
    which iSogCLR's temperature step needs. 0 on rows whose lse is ``-inf``.
    """
    rows, cols = a.shape[0], b.shape[0]
    out = torch.zeros_like(lse)
    lse = lse.masked_fill(lse == float("-inf"), float("inf"))
    overlaps = _masks(row_ids, col_ids, tile_r, tile_c)
    with torch.no_grad():
        for ri, r0 in enumerate(range(0, rows, tile_r)):
            r1 = min(r0 + tile_r, rows)
            scale = scale_vec[r0:r1, None]
            for ci, c0 in enumerate(range(0, cols, tile_c)):
                c1 = min(c0 + tile_c, cols)
                s = a[r0:r1] @ b[c0:c1].T
                x = s * scale
                if overlaps(ri, ci):
                    _exclude(x, row_ids[r0:r1], col_ids[c0:c1])  # type: ignore[index]
                p = x.sub_(lse[r0:r1, None]).exp_()
                out[r0:r1] += (p * s).sum(dim=1)
    return out


# --------------------------------------------------------------------------------------------
# autograd
# --------------------------------------------------------------------------------------------


class _TiledLSE(torch.autograd.Function):
    """lse = forward_fn(a, b, scale_vec, ids); the backward recomputes tiles."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        a: Tensor,
        b: Tensor,
        scale_vec: Tensor,
        row_ids: Tensor | None,
        col_ids: Tensor | None,
        forward_fn: Callable[..., Tensor],
        backward_fn: Callable[..., tuple[Tensor, Tensor, Tensor]],
    ) -> Tensor:
        lse = forward_fn(a, b, scale_vec, row_ids, col_ids)
        ctx.save_for_backward(a, b, scale_vec, row_ids, col_ids, lse)
        ctx.backward_fn = backward_fn
        return lse

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_lse: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        a, b, scale_vec, row_ids, col_ids, lse = ctx.saved_tensors
        grad_a, grad_b, grad_scale = ctx.backward_fn(
            a, b, scale_vec, row_ids, col_ids, lse, grad_lse.contiguous()
        )
        need = ctx.needs_input_grad
        return (
            grad_a if need[0] else None,
            grad_b if need[1] else None,
            grad_scale if need[2] else None,
            None,
            None,
            None,
            None,
        )


class _DenseLSE(torch.autograd.Function):
    """lse of the materialised, masked, scaled matrix; saves its softmax P (R x C) so the
    backward is two products (P @ b, Pᵀ @ a) and allocates nothing of size R x C."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        a: Tensor,
        b: Tensor,
        scale_vec: Tensor,
        row_ids: Tensor | None,
        col_ids: Tensor | None,
    ) -> Tensor:
        x = (a * scale_vec[:, None]) @ b.T  # (R, C), the only matrix of that size
        if row_ids is not None and col_ids is not None:
            for r0 in range(0, x.shape[0], TILE_ROWS):  # (TILE_ROWS, C) masks at a time
                r1 = min(r0 + TILE_ROWS, x.shape[0])
                _exclude(x[r0:r1], row_ids[r0:r1], col_ids)
        peak = x.amax(dim=1)
        peak = peak.masked_fill(peak == float("-inf"), 0.0)  # rows with nothing kept
        p = x.sub_(peak[:, None]).exp_()
        total = p.sum(dim=1)
        lse = peak + total.log()  # -inf where nothing is kept
        p.div_(total.masked_fill(total == 0, 1.0)[:, None])  # the row softmax, in place
        ctx.save_for_backward(a, b, scale_vec, p)
        return lse

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_lse: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        a, b, scale_vec, p = ctx.saved_tensors
        g = grad_lse[:, None]
        need = ctx.needs_input_grad
        wb = (p @ b) * g  # Σ_j W_ij b_j, W = g ⊙ P (0 on rows with nothing kept)
        grad_a = wb * scale_vec[:, None] if need[0] else None
        grad_b = p.T @ (a * (scale_vec[:, None] * g)) if need[1] else None
        grad_scale = (a * wb).sum(dim=1) if need[2] else None
        return grad_a, grad_b, grad_scale, None, None


def dense_logsumexp(
    a: Tensor,
    b: Tensor,
    scale: Scale,
    *,
    row_ids: Tensor | None = None,
    col_ids: Tensor | None = None,
) -> Tensor:
    """:func:`tiled_logsumexp`'s value and gradient from the materialised (R x C) matrix:
    for small problems, where recomputing tiles costs more than it saves. Memory: that one
    matrix (its softmax is kept for the backward, which is two products and nothing more of
    size R x C), against the three or four of autograd through ``masked_fill`` and
    ``logsumexp``. Same arguments and result as :func:`tiled_logsumexp` (PyTorch only)."""
    _check_pair(a, b, "dense_logsumexp")
    if (row_ids is None) != (col_ids is None):
        raise ValueError("dense_logsumexp: give row_ids and col_ids together, or neither")
    rows, cols = a.shape[0], b.shape[0]
    if row_ids is not None and col_ids is not None:
        row_ids = _check_ids(row_ids, rows, "row_ids", a.device)
        col_ids = _check_ids(col_ids, cols, "col_ids", a.device)
    with torch.autocast(a.device.type, enabled=False):
        if a.dtype not in (torch.float32, torch.float64):
            a, b = a.float(), b.float()
        scale_vec = _scale_vector(scale, rows, a)
        if rows == 0 or cols == 0:  # nothing to sum: -inf, no gradient
            return a.sum(dim=1) * 0.0 + (float("-inf") if cols == 0 else 0.0)
        return _DenseLSE.apply(a.contiguous(), b.contiguous(), scale_vec, row_ids, col_ids)


# --------------------------------------------------------------------------------------------
# backends and checks
# --------------------------------------------------------------------------------------------


TRITON_FAILURES: list[str] = []
"""Why the Triton kernels failed in this process (then ``backend="auto"`` uses PyTorch)."""


def with_fallback(kernel: Callable[..., Any], reference: Callable[..., Any]) -> Callable[..., Any]:
    """``kernel``, or ``reference`` (same arguments and results) from the first time a
    kernel raises anything but an out-of-memory error in this process: a Triton build or
    launch failure is reported once as a ``RuntimeWarning`` (and kept in
    :data:`TRITON_FAILURES`) and training goes on with the PyTorch tiles."""

    def run(*args: Any) -> Any:
        if not TRITON_FAILURES:
            try:
                return kernel(*args)
            except torch.cuda.OutOfMemoryError:
                raise
            except Exception as exc:  # any kernel failure falls back
                TRITON_FAILURES.append(f"{type(exc).__name__}: {exc}"[:500])
                warnings.warn(
                    "manyview tiled engine: the Triton kernels failed "
                    f"({TRITON_FAILURES[-1].splitlines()[0]}); using the PyTorch tiles from "
                    "now on (pass backend='triton' to see the error instead)",
                    RuntimeWarning,
                    stacklevel=2,
                )
        return reference(*args)

    return run


_KERNEL_CHECKS: dict[tuple[Any, ...], bool] = {}
"""Outcome of :func:`kernels_agree` per (dtype, D, ids, tf32, device) in this process."""


def tf32_enabled() -> bool:
    """torch's float32 matmul mode on CUDA: ``torch.backends.cuda.matmul.allow_tf32``, read so
    that it also works after the newer ``fp32_precision`` API was used (then reading
    ``allow_tf32`` raises). The Triton kernels follow it."""
    matmul = torch.backends.cuda.matmul
    mode = getattr(matmul, "fp32_precision", "none")
    if mode in ("tf32", "ieee"):
        return mode == "tf32"
    try:
        return bool(matmul.allow_tf32)
    except RuntimeError:  # the legacy and the new precision APIs mixed
        return False


def _relative_gap(got: Tensor, want: Tensor) -> float:
    """‖got − want‖ / ‖want‖ in float64 (inf when ``got`` has a NaN or inf)."""
    got, want = got.double(), want.double()
    if not torch.isfinite(got).all():
        return float("inf")
    return float((got - want).norm() / want.norm().clamp_min(1e-30))


def kernels_agree(kernels: Any, dtype: torch.dtype, dim: int, ids: bool, device: Any) -> bool:
    """Whether the Triton kernels give the lse and the gradients of the PyTorch tiles (in
    float64) on a small random problem of this dtype, feature size, exclusion mode and device:
    checked once per (dtype, D, ids, tf32 mode, device) in a process, before ``backend="auto"``
    first trusts them with a loss. A mismatch (beyond tf32 / half-precision rounding: 1e-2
    relative) or a failure is recorded in :data:`TRITON_FAILURES` and warned about once, and
    the PyTorch tiles are used from then on: a kernel that is wrong on some GPU must never
    train a model silently. Out-of-memory errors propagate."""
    key = (dtype, dim, ids, tf32_enabled(), str(device))
    if key in _KERNEL_CHECKS:
        return _KERNEL_CHECKS[key]
    gen = torch.Generator().manual_seed(0)
    r, c = 203, 171  # ragged against every block size

    def unit(n: int) -> Tensor:
        x = torch.randn(n, dim, generator=gen, dtype=torch.float64)
        return x / x.norm(dim=1, keepdim=True)

    a64, b64 = unit(r), unit(c)
    # moderate scales keep tf32's rounding (~1e-3 here) far below the threshold, and ids of
    # 5 classes leave out a fifth of each row: a kernel ignoring them is off by ~5e-2
    scale64 = 1.0 + 2.0 * torch.rand(r, generator=gen, dtype=torch.float64)
    grad64 = torch.randn(r, generator=gen, dtype=torch.float64)
    rid = cid = None
    if ids:
        rid = torch.randint(0, 5, (r,), generator=gen).to(device)
        cid = torch.randint(0, 5, (c,), generator=gen).to(device)
    dev = {"device": device}
    a64, b64, scale64, grad64 = (t.to(**dev) for t in (a64, b64, scale64, grad64))
    with torch.no_grad(), torch.autocast(torch.device(device).type, enabled=False):
        want = torch_lse_forward(a64, b64, scale64, rid, cid, 64, 64)
        want_grads = torch_lse_backward(a64, b64, scale64, rid, cid, want, grad64, 64, 64)
        try:
            a, b = a64.to(dtype), b64.to(dtype)
            scale, grad = scale64.float(), grad64.float()
            got = kernels.triton_lse_forward(a, b, scale, rid, cid)
            got_grads = kernels.triton_lse_backward(a, b, scale, rid, cid, got, grad)
        except torch.cuda.OutOfMemoryError:
            raise
        except Exception as exc:  # a build or launch failure: as with_fallback reports it
            problem = f"{type(exc).__name__}: {exc}"
        else:
            gaps = [_relative_gap(got, want)]
            gaps += [_relative_gap(x, y) for x, y in zip(got_grads, want_grads, strict=True)]
            worst = max(gaps)
            problem = (
                ""
                if worst < 1e-2
                else f"their results differ from the PyTorch tiles' (relative {worst:.1e} for "
                f"{dtype}, D = {dim}{', with ids' if ids else ''})"
            )
    _KERNEL_CHECKS[key] = not problem
    if problem and not TRITON_FAILURES:
        TRITON_FAILURES.append(problem[:500])
        first_line = problem.splitlines()[0]
        warnings.warn(
            f"manyview tiled engine: the Triton kernels failed a self-check ({first_line}); "
            "using the PyTorch tiles from now on (pass backend='triton' to use them anyway)",
            RuntimeWarning,
            stacklevel=3,
        )
    return not problem


def triton_interprets() -> bool:
    """Whether ``TRITON_INTERPRET`` asks triton to run kernels in its CPU interpreter (read
    from the environment, without importing triton)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def _kernel_device(t: Tensor) -> bool:
    """Whether ``t`` is where the Triton kernels run: CUDA, or any device while triton
    interprets kernels on the CPU (how the tests run them without a GPU). Checked before
    :func:`_triton` so that CPU runs never import triton."""
    return t.is_cuda or triton_interprets()


def _triton() -> Any | None:
    """``manyview.losses.tiled_triton`` if it imports and reports ``available()``."""
    try:
        from manyview.losses.engine import triton_kernels as tiled_triton
    except ImportError:
        return None
    available = getattr(tiled_triton, "available", None)
    if available is None or not available():
        return None
    return tiled_triton


def _suggest(word: str, choices: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(str(word), choices, n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""


def _check_choice(value: Any, choices: tuple[str, ...], what: str, who: str) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(
            f"{who}: unknown {what} {value!r}{_suggest(str(value), choices)} "
            f"(choose from {', '.join(repr(c) for c in choices)})"
        )
    return value


def check_engine(engine: Any, who: str = "loss") -> str:
    """``engine`` if it is one of :data:`ENGINES`, else a ValueError naming the closest."""
    return _check_choice(engine, ENGINES, "engine", who)


def use_tiled(engine: str, entries: int, *, threshold_factor: float = 1.0) -> bool:
    """Whether a loss with this ``engine`` tiles a dense logits matrix of ``entries``
    entries: always for ``"tiled"``, never for ``"dense"``, and for ``"auto"`` above
    ``threshold_factor`` x :data:`TILED_MIN_ENTRIES` (read at call time; a loss whose tiled
    form wins earlier, as CLIP's one-walk form does, passes a factor below 1)."""
    if engine == "tiled":
        return True
    if engine == "dense":
        return False
    return entries > TILED_MIN_ENTRIES * threshold_factor


def _tiles(tile: int | tuple[int, int] | None) -> tuple[int, int]:
    if tile is None:
        tile = (TILE_ROWS, TILE_COLS)
    elif isinstance(tile, int) and not isinstance(tile, bool):
        tile = (tile, tile)
    if (
        not isinstance(tile, tuple)
        or len(tile) != 2
        or not all(isinstance(t, int) and not isinstance(t, bool) and t > 0 for t in tile)
    ):
        raise ValueError(
            f"tiled_logsumexp: tile must be a positive int or (rows, cols), got {tile!r}"
        )
    return tile


def _check_ids(ids: Tensor, length: int, name: str, device: torch.device) -> Tensor:
    if not isinstance(ids, Tensor) or ids.dim() != 1 or ids.shape[0] != length:
        shape = tuple(ids.shape) if isinstance(ids, Tensor) else type(ids).__name__
        raise ValueError(f"tiled_logsumexp: {name} must have shape ({length},), got {shape}")
    if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
        raise ValueError(f"tiled_logsumexp: {name} must be an integer tensor, got {ids.dtype}")
    if ids.device != device:
        raise ValueError(f"tiled_logsumexp: {name} is on {ids.device}, the inputs on {device}")
    return ids.long().contiguous()


def _scale_vector(scale: Scale, rows: int, like: Tensor) -> Tensor:
    """``scale`` as an (R,) tensor of ``like``'s dtype, in the autograd graph when it is a
    tensor (so a 0-dim scale gets the sum of the per-row gradients)."""
    if isinstance(scale, Tensor):
        if scale.device != like.device:
            raise ValueError(
                f"tiled_logsumexp: scale is on {scale.device}, the inputs on {like.device}"
            )
        if not scale.is_floating_point():
            raise ValueError(f"tiled_logsumexp: scale must be floating point, got {scale.dtype}")
        scale = scale.to(like.dtype)
        if scale.dim() == 0:
            return scale.expand(rows)
        if scale.shape == (rows,):
            return scale.contiguous()
        raise ValueError(
            f"tiled_logsumexp: scale must be a number, a 0-dim tensor or shape ({rows},), "
            f"got {tuple(scale.shape)}"
        )
    if isinstance(scale, bool) or not isinstance(scale, int | float):
        raise ValueError(
            f"tiled_logsumexp: scale must be a number or a tensor, got {type(scale).__name__}"
        )
    return like.new_full((rows,), float(scale))


def _check_pair(a: Any, b: Any, who: str) -> None:
    """ValueError unless a (R, D) and b (C, D) are floating tensors of one dtype and device."""
    for name, t in (("a", a), ("b", b)):
        if not isinstance(t, Tensor) or t.dim() != 2:
            shape = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
            raise ValueError(f"{who}: {name} must be a 2-D tensor (rows, D), got {shape}")
        if not t.is_floating_point():
            raise ValueError(f"{who}: {name} must be floating point, got {t.dtype}")
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"{who}: a and b need the same feature size, got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    if a.dtype != b.dtype:
        raise ValueError(f"{who}: a is {a.dtype} but b is {b.dtype}")
    if a.device != b.device:
        raise ValueError(f"{who}: a is on {a.device} but b on {b.device}")


def tiled_logsumexp(
    a: Tensor,
    b: Tensor,
    scale: Scale,
    *,
    row_ids: Tensor | None = None,
    col_ids: Tensor | None = None,
    tile: int | tuple[int, int] | None = None,
    backend: str = "auto",
) -> Tensor:
    r"""Row-wise log-sum-exp of scaled inner products, without the (R x C) matrix.

    .. math:: \mathrm{lse}_i = \log\sum_{j:\ \mathrm{row\_ids}_i \ne \mathrm{col\_ids}_j}
              \exp(\mathrm{scale}_i\,\langle a_i, b_j\rangle)

    Value and gradient equal the dense ``(scale * a @ b.T).masked_fill(...).logsumexp(1)``
    up to rounding; memory is O((R + C)·D + tile_r·tile_c) in both passes (the backward
    recomputes each tile, as Inf-CL does, arXiv 2410.17243).

    Args:
        a: (R, D) anchor rows, float32 or float64 (bf16/half are computed in float32).
        b: (C, D) candidate rows, the same dtype and device as ``a``.
        scale: a number, a 0-dim tensor or an (R,) tensor (per-row 1/τ_i); a tensor may
            require grad (a learnable logit scale).
        row_ids, col_ids: (R,) and (C,) integer ids, given together or not at all; entry
            (i, j) is excluded when ``row_ids[i] == col_ids[j]`` (self-exclusion: the
            anchors' global column indices and ``arange(C)``; same-instance exclusion:
            instance ids). A row with every entry excluded gives ``-inf`` and no gradient.
        tile: rows and columns per tile, an int for both or ``(rows, cols)``; default
            ``(TILE_ROWS, TILE_COLS)``. Ignored by the Triton kernels.
        backend: ``"auto"`` (Triton on CUDA when ``manyview.losses.tiled_triton`` is
            available, else PyTorch), ``"torch"`` or ``"triton"``.

    Returns:
        (R,) tensor, float32 for half-precision inputs, else ``a``'s dtype. Runs with
        autocast disabled.

    Raises:
        ValueError: on mismatched shapes, dtypes or devices, ids of the wrong length or
            given alone, a bad ``scale``/``tile``/``backend``, or ``"triton"`` unavailable.
    """
    _check_choice(backend, BACKENDS, "backend", "tiled_logsumexp")
    _check_pair(a, b, "tiled_logsumexp")
    if (row_ids is None) != (col_ids is None):
        raise ValueError("tiled_logsumexp: give row_ids and col_ids together, or neither")
    rows, cols = a.shape[0], b.shape[0]
    if row_ids is not None and col_ids is not None:
        row_ids = _check_ids(row_ids, rows, "row_ids", a.device)
        col_ids = _check_ids(col_ids, cols, "col_ids", a.device)
    tile_r, tile_c = _tiles(tile)

    # The Triton kernels take float32 (half precision is computed in float32 here), not
    # float64: float64 stays on the PyTorch tiles.
    wide = a.dtype == torch.float64
    kernels = None
    if backend == "triton" or (backend == "auto" and _kernel_device(a) and not wide):
        kernels = _triton()
        if backend == "triton" and (kernels is None or not kernels.takes(a) or wide):
            why = (
                "the inputs are not on CUDA"
                if not _kernel_device(a)
                else "the kernels take float32, not float64"
                if wide
                else "it is not available"
            )
            raise ValueError(
                f"tiled_logsumexp: backend='triton' but {why} (manyview.losses.tiled_triton "
                "needs CUDA and triton); use backend='torch'"
            )
    forward_fn: Callable[..., Tensor] = functools.partial(
        torch_lse_forward, tile_r=tile_r, tile_c=tile_c
    )
    backward_fn: Callable[..., tuple[Tensor, Tensor, Tensor]] = functools.partial(
        torch_lse_backward, tile_r=tile_r, tile_c=tile_c
    )
    if kernels is not None and backend == "triton":
        forward_fn, backward_fn = kernels.triton_lse_forward, kernels.triton_lse_backward
    elif kernels is not None and not TRITON_FAILURES:  # "auto": never a wrong or failed kernel
        dtype = torch.float32 if a.dtype not in (torch.float32, torch.float64) else a.dtype
        if kernels_agree(kernels, dtype, a.shape[1], row_ids is not None, a.device):
            forward_fn = with_fallback(kernels.triton_lse_forward, forward_fn)
            backward_fn = with_fallback(kernels.triton_lse_backward, backward_fn)

    with torch.autocast(a.device.type, enabled=False):
        if a.dtype not in (torch.float32, torch.float64):
            a, b = a.float(), b.float()
        scale_vec = _scale_vector(scale, rows, a)
        if rows == 0:
            return a.sum(dim=1) * 0.0  # shape (0,)
        return _TiledLSE.apply(
            a.contiguous(), b.contiguous(), scale_vec, row_ids, col_ids, forward_fn, backward_fn
        )


# --------------------------------------------------------------------------------------------
# rows and columns in one pass (CLIP)
# --------------------------------------------------------------------------------------------


def torch_lse_rows_cols_forward(
    a: Tensor, b: Tensor, scale: Tensor, tile_r: int, tile_c: int
) -> tuple[Tensor, Tensor]:
    """``(row_lse (R,), col_lse (C,))`` of ``scale * a @ b.T`` in one walk over the tiles:
    each tile's row LSE is merged into the rows' running LSE and its column LSE into the
    columns' (no graph)."""
    rows, cols = a.shape[0], b.shape[0]
    row_lse = a.new_full((rows,), float("-inf"))
    col_lse = a.new_full((cols,), float("-inf"))
    with torch.no_grad():
        for r0 in range(0, rows, tile_r):
            scaled = a[r0 : r0 + tile_r] * scale
            acc = row_lse[r0 : r0 + tile_r]
            for c0 in range(0, cols, tile_c):
                x = scaled @ b[c0 : c0 + tile_c].T
                torch.logaddexp(acc, _tile_lse(x.clone(), 1), out=acc)  # x is needed again
                col = col_lse[c0 : c0 + tile_c]
                torch.logaddexp(col, _tile_lse(x, 0), out=col)
    return row_lse, col_lse


def torch_lse_rows_cols_backward(
    a: Tensor,
    b: Tensor,
    scale: Tensor,
    row_lse: Tensor,
    col_lse: Tensor,
    grad_rows: Tensor,
    grad_cols: Tensor,
    tile_r: int,
    tile_c: int,
) -> tuple[Tensor, Tensor, Tensor]:
    """Gradients of ``Σ_i g^r_i row_lse_i + Σ_j g^c_j col_lse_j``, recomputing each tile once:
    W = g^r_i exp(x_ij - row_lse_i) + g^c_j exp(x_ij - col_lse_j), grad_a = scale·W @ b,
    grad_b = scale·Wᵀ @ a, grad_scale = Σ W ∘ s (0-dim)."""
    rows, cols = a.shape[0], b.shape[0]
    grad_a = torch.zeros_like(a)
    grad_b = torch.zeros_like(b)
    grad_scale = a.new_zeros(())
    with torch.no_grad():
        for r0 in range(0, rows, tile_r):
            r1 = min(r0 + tile_r, rows)
            ar = a[r0:r1]
            for c0 in range(0, cols, tile_c):
                c1 = min(c0 + tile_c, cols)
                x = (ar * scale) @ b[c0:c1].T
                w = (x - row_lse[r0:r1, None]).exp_().mul_(grad_rows[r0:r1, None])
                w += (x - col_lse[None, c0:c1]).exp_().mul_(grad_cols[None, c0:c1])
                wb = w @ b[c0:c1]  # (tr, D)
                grad_a[r0:r1] += wb * scale
                grad_b[c0:c1].addmm_(w.T, ar, alpha=float(scale))
                grad_scale += (ar * wb).sum()
    return grad_a, grad_b, grad_scale


class _TiledLSERowsCols(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, a: Tensor, b: Tensor, scale: Tensor, tile_r: int, tile_c: int
    ) -> tuple[Tensor, Tensor]:
        row_lse, col_lse = torch_lse_rows_cols_forward(a, b, scale, tile_r, tile_c)
        ctx.save_for_backward(a, b, scale, row_lse, col_lse)
        ctx.tiles = (tile_r, tile_c)
        return row_lse, col_lse

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_rows: Tensor, grad_cols: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        a, b, scale, row_lse, col_lse = ctx.saved_tensors
        grad_a, grad_b, grad_scale = torch_lse_rows_cols_backward(
            a, b, scale, row_lse, col_lse, grad_rows, grad_cols, *ctx.tiles
        )
        need = ctx.needs_input_grad
        return (
            grad_a if need[0] else None,
            grad_b if need[1] else None,
            grad_scale if need[2] else None,
            None,
            None,
        )


def tiled_logsumexp_rows_cols(
    a: Tensor,
    b: Tensor,
    scale: float | Tensor,
    *,
    tile: int | tuple[int, int] | None = None,
    backend: str = "auto",
) -> tuple[Tensor, Tensor]:
    r"""The row and the column log-sum-exps of ``scale * a @ b.T`` (CLIP's two directions)
    without the (R x C) matrix, in one walk over the tiles forward and one backward:

    .. math:: \mathrm{row}_i = \log\sum_j e^{x_{ij}},\quad
              \mathrm{col}_j = \log\sum_i e^{x_{ij}},\quad x = \mathrm{scale}\,a b^\top

    Three tile products in all (one forward, two backward) instead of the eight of two
    :func:`tiled_logsumexp` calls. ``scale``: a number or a 0-dim tensor (may require
    grad). On CUDA with the Triton kernels available (``backend="auto"``), it is two
    :func:`tiled_logsumexp` calls (the kernels are one-sided). Returns ``((R,), (C,))``.
    """
    _check_choice(backend, BACKENDS, "backend", "tiled_logsumexp_rows_cols")
    if isinstance(scale, Tensor) and scale.dim() != 0:
        raise ValueError(
            "tiled_logsumexp_rows_cols: scale must be a number or a 0-dim tensor, got shape "
            f"{tuple(scale.shape)}"
        )
    if backend != "torch" and (
        backend == "triton"
        or (_kernel_device(a) and a.dtype != torch.float64 and _triton() is not None)
    ):
        rows = tiled_logsumexp(a, b, scale, tile=tile, backend=backend)
        return rows, tiled_logsumexp(b, a, scale, tile=tile, backend=backend)
    _check_pair(a, b, "tiled_logsumexp_rows_cols")
    tile_r, tile_c = _tiles(tile)
    with torch.autocast(a.device.type, enabled=False):
        if a.dtype not in (torch.float32, torch.float64):
            a, b = a.float(), b.float()
        scale_t = _scale_vector(scale, 1, a)[0]
        if a.shape[0] == 0 or b.shape[0] == 0:
            raise ValueError("tiled_logsumexp_rows_cols: a and b need at least one row each")
        return _TiledLSERowsCols.apply(a.contiguous(), b.contiguous(), scale_t, tile_r, tile_c)


def tiled_softmax_moment(
    a: Tensor,
    b: Tensor,
    scale: Scale,
    lse: Tensor,
    *,
    row_ids: Tensor | None = None,
    col_ids: Tensor | None = None,
    tile: int | tuple[int, int] | None = None,
) -> Tensor:
    """(R,) ``Σ_j softmax_ij <a_i, b_j>`` under the row softmax whose log-partition is
    ``lse`` (from :func:`tiled_logsumexp` with the same arguments); no gradient, PyTorch
    tiles. This is d lse_i / d scale_i (iSogCLR's temperature gradient needs it)."""
    tile_r, tile_c = _tiles(tile)
    with torch.no_grad(), torch.autocast(a.device.type, enabled=False):
        if a.dtype not in (torch.float32, torch.float64):
            a, b = a.float(), b.float()
        scale_vec = _scale_vector(scale, a.shape[0], a).detach()
        if row_ids is not None:
            row_ids, col_ids = row_ids.long(), col_ids.long()  # type: ignore[union-attr]
        return torch_lse_moment(
            a.contiguous(),
            b.contiguous(),
            scale_vec,
            row_ids,
            col_ids,
            lse.detach().to(a.dtype),
            tile_r,
            tile_c,
        )


# --------------------------------------------------------------------------------------------
# view-major helpers for the losses
# --------------------------------------------------------------------------------------------


def view_major_lse(
    z: Tensor,
    scale: Scale,
    *,
    offset: int = 0,
    count: int | None = None,
    exclude: str = "self",
    dense: bool = False,
) -> Tensor:
    """Tiled row LSEs (``dense=True``: by :func:`dense_logsumexp`) of the view-major anchors
    of instances ``offset .. offset+count-1`` (default: all) of ``z`` (N, M, D) against all
    M·N view-major rows of ``z``.

    Returns (M·count,), row ``m*count + k`` for view m of instance ``offset + k``:
    ``log Σ_c exp(scale·<anchor, row c>)`` over the columns c that ``exclude`` keeps —
    ``"self"``: every column but the anchor's own (global id ``m*N + offset + k``);
    ``"instance"``: no view of the anchor's own instance; ``"view"``: no column of the
    anchor's own view. ``scale`` may be a number, a 0-dim or an (M·count,) tensor.
    """
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
    elif exclude == "view":
        row_ids = views.repeat_interleave(count)
        col_ids = views.repeat_interleave(n)
    else:
        raise ValueError(
            f"view_major_lse: exclude must be 'self', 'instance' or 'view', got {exclude!r}"
        )
    lse_fn = dense_logsumexp if dense else tiled_logsumexp
    return lse_fn(rows, flat, scale, row_ids=row_ids, col_ids=col_ids)
