"""Fused Triton kernels for the tiled, exact, masked row-logsumexp of a scaled similarity matrix.

This is the CUDA fast path of the tiled contrastive engine (:mod:`manyview.losses.engine`; the
Inf-CL decomposition, Cheng et al., CVPR 2025, arXiv 2410.17243).
For ``a`` (R, D), ``b`` (C, D), a per-row scale ``scale_vec`` (R,) and optional ids (entry
(i, j) is excluded when ``row_ids[i] == col_ids[j]``)::

    lse_i = log sum_{j not excluded} exp(scale_i <a_i, b_j>)      (-inf if all are excluded)

and, given ``grad_lse`` g, with P_ij = exp(scale_i s_ij - lse_i) on kept entries (0 elsewhere)
and W_ij = g_i P_ij::

    grad_a_i = scale_i sum_j W_ij b_j,  grad_b_j = sum_i scale_i W_ij a_i,
    grad_scale_i = sum_j W_ij s_ij.

The (R, C) matrix never exists in memory: every kernel streams tiles of ``a`` and ``b`` through
on-chip memory and keeps O(R + C) state (the forward stores only lse).

Kernels (all accumulate in float32):

- forward, one program per block of ``BLOCK_M`` rows, looping over blocks of ``BLOCK_N``
  columns with an online max / sum-of-exp (base 2: the scale is pre-multiplied by log2 e).
- backward, two launches, no atomics, so the result is deterministic (bit-identical run to
  run): a row-block-parallel kernel for grad_a and grad_scale (loops over column blocks) and a
  column-block-parallel kernel for grad_b (loops over row blocks). Each recomputes its tiles of
  s and P from ``a``, ``b`` and the saved lse, so the backward does 4 tile products per tile
  (2 recomputations of s, P @ b and P^T @ a) against the 3 of a materialised matrix; the
  single-kernel alternative (grad_b in registers, grad_a by float32 atomics) saves one product
  but makes grad_a run-to-run nondeterministic and adds R x D x (C / BLOCK_N) atomic adds,
  which is what FlashAttention-2's Triton tutorial also avoids by splitting dq from dk/dv.

When the grid would leave SMs idle (fewer programs than SMs, e.g. R = 8192 rows in blocks of
128 on a 132-SM H100), the inner loop is split over a further grid axis: each split writes
float32 partials (partial lse, or partial gradients) that the host merges in a fixed order
(``torch.logsumexp`` / ``sum`` over the split axis), which keeps the result deterministic.

``D``: on CUDA it is zero-padded to a multiple of 16 (aligned rows give vectorised, pipelined
tile loads; other D would be loaded element by element). When the padded ``D`` rounded up to a
power of two fits one tile (bf16 / fp16 up to 256, float32 up to 128), a program loads its own
block of rows once and reuses each streamed tile of the other side for both of its products
(FlashAttention style, ``_Config.resident``). Otherwise the score tile is built by a K loop over
``BLOCK_K`` slices of ``D``, and the gradient's ``D`` is cut into chunks of ``BLOCK_DO`` (256)
over a further grid axis; each chunk recomputes s, so for D = 1024 the backward's score
products are done four times. Block shapes (``_forward_configs``, ``_backward_configs``) were
chosen for H100 / H200 by compiling every default for sm_90 offline (all use wgmma, none spills
registers, shared memory <= 160 KiB); they are not yet tuned by timing
(``benchmarks/loss_speed_gpu_check.py --sweep`` times alternatives). A config that does not fit
the device's shared memory falls back to the next, smaller one.

float32 inputs use tf32 tensor-core products when ``torch.backends.cuda.matmul.allow_tf32`` is
True and exact float32 (``input_precision="ieee"``) otherwise. For bf16 / fp16 inputs the
probability tile is rounded to the input dtype for the gradient products (as FlashAttention
does); the per-row factors g_i scale_i are applied in float32 outside the products, and the
grad_b weights are normalised by max |g_i scale_i| first, so small upstream gradients (1/N)
do not underflow the fp16 products. Exact float32 runs the products on the FMA units, with
narrow K-loop tiles (``exact`` configs), several times slower than tf32.

``triton`` is imported under a guard: this module imports on machines without triton or
without CUDA, where :func:`available` is False. The kernels also run in Triton's CPU
interpreter (``TRITON_INTERPRET=1`` before triton is imported) on CPU tensors, which is how
the tests check them without a GPU.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor

from manyview.losses.engine.runtime import tf32_enabled, triton_interprets

try:  # guarded: the module must import without triton
    import triton
    import triton.language as tl
    from triton.runtime.errors import OutOfResources
except Exception:  # pragma: no cover - depends on the install
    triton = None  # type: ignore[assignment]
    tl = None  # type: ignore[assignment]
    OutOfResources = RuntimeError  # type: ignore[assignment,misc]

__all__ = ["available", "interpreted", "takes", "triton_lse_backward", "triton_lse_forward"]

_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def interpreted() -> bool:
    """True when triton runs kernels in its CPU interpreter (``TRITON_INTERPRET=1`` was set
    before triton was imported): the kernels then take CPU tensors."""
    return triton is not None and triton_interprets()


def available() -> bool:
    """True when triton imports and a CUDA device is present, or triton interprets kernels on
    the CPU (:func:`interpreted`); never raises."""
    try:
        return triton is not None and (interpreted() or bool(torch.cuda.is_available()))
    except Exception:
        return False


def takes(t: Tensor) -> bool:
    """Whether the kernels can run on ``t``'s device: CUDA, or the CPU when interpreted."""
    return t.is_cuda or (t.device.type == "cpu" and interpreted())


if triton is not None:
    # The forward and the two backward kernels take the same operands and build their score
    # tiles alike; the two backward kernels mirror each other with the roles of rows and
    # columns swapped (which block stays in registers and which is streamed, P or its
    # transpose, where the per-row factors g_i scale_i enter). They stay written out apart:
    # each is one fused loop whose loads, masks and accumulator are those of its own side.

    @triton.jit
    def _score_tile(
        x_ptr,
        y_ptr,
        x_idx,
        y_idx,
        x_ok,
        y_ok,
        D,
        BX: tl.constexpr,
        BY: tl.constexpr,
        BLOCK_K: tl.constexpr,
        PREC: tl.constexpr,
    ):
        """(BX, BY) float32 tile of x[x_idx] @ y[y_idx]^T, K loop over D in BLOCK_K slices."""
        offs_k = tl.arange(0, BLOCK_K)
        x_base = x_ptr + x_idx.to(tl.int64)[:, None] * D
        y_base = y_ptr + y_idx.to(tl.int64)[:, None] * D
        acc = tl.zeros([BX, BY], dtype=tl.float32)
        for k0 in range(0, D, BLOCK_K):
            kk = k0 + offs_k
            k_ok = kk < D
            xt = tl.load(x_base + kk[None, :], mask=x_ok[:, None] & k_ok[None, :], other=0.0)
            yt = tl.load(y_base + kk[None, :], mask=y_ok[:, None] & k_ok[None, :], other=0.0)
            acc = tl.dot(xt, tl.trans(yt), acc, input_precision=PREC)
        return acc

    @triton.jit
    def _lse_fwd_kernel(
        a_ptr,
        b_ptr,
        scale_ptr,
        rid_ptr,
        cid_ptr,
        lse_ptr,
        R,
        C,
        D,
        span,
        HAS_IDS: tl.constexpr,
        RESIDENT: tl.constexpr,
        BLOCK_M: tl.constexpr,
        BLOCK_N: tl.constexpr,
        BLOCK_K: tl.constexpr,
        PREC: tl.constexpr,
    ):
        """Partial lse of BLOCK_M rows over the columns of one split (``span`` columns):
        online max / sum-exp (base 2) over its column blocks, stored at [split, row]."""
        pid = tl.program_id(0)
        pid_s = tl.program_id(1)
        c_lo = pid_s * span
        c_hi = tl.minimum(C, c_lo + span)
        rows = pid * BLOCK_M + tl.arange(0, BLOCK_M)
        row_ok = rows < R
        scale2 = tl.load(scale_ptr + rows, mask=row_ok, other=0.0) * 1.4426950408889634
        if HAS_IDS:
            rid = tl.load(rid_ptr + rows, mask=row_ok, other=-1)
        offs_k = tl.arange(0, BLOCK_K)
        if RESIDENT:
            a_blk = tl.load(
                a_ptr + rows.to(tl.int64)[:, None] * D + offs_k[None, :],
                mask=row_ok[:, None] & (offs_k[None, :] < D),
                other=0.0,
            )
        m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
        l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
        for n0 in range(c_lo, c_hi, BLOCK_N):
            cols = n0 + tl.arange(0, BLOCK_N)
            col_ok = cols < c_hi
            if RESIDENT:
                b_blk = tl.load(
                    b_ptr + cols.to(tl.int64)[:, None] * D + offs_k[None, :],
                    mask=col_ok[:, None] & (offs_k[None, :] < D),
                    other=0.0,
                )
                s = tl.dot(a_blk, tl.trans(b_blk), input_precision=PREC)
            else:
                s = _score_tile(
                    a_ptr, b_ptr, rows, cols, row_ok, col_ok, D, BLOCK_M, BLOCK_N, BLOCK_K, PREC
                )
            keep = col_ok[None, :]
            if HAS_IDS:
                cid = tl.load(cid_ptr + cols, mask=col_ok, other=-1)
                keep = keep & (rid[:, None] != cid[None, :])
            x = tl.where(keep, s * scale2[:, None], float("-inf"))
            m_new = tl.maximum(m_i, tl.max(x, 1))
            m_ref = tl.where(m_new == float("-inf"), 0.0, m_new)  # all-excluded so far
            l_i = l_i * tl.exp2(m_i - m_ref) + tl.sum(tl.exp2(x - m_ref[:, None]), 1)
            m_i = m_new
        # l_i == 0 exactly when m_i == -inf: the sum then stays -inf
        lse = (m_i + tl.log2(l_i)) * 0.6931471805599453
        tl.store(lse_ptr + pid_s * R + rows, lse, mask=row_ok)

    @triton.jit
    def _lse_bwd_rows_kernel(
        a_ptr,
        b_ptr,
        scale_ptr,
        rid_ptr,
        cid_ptr,
        lse_ptr,
        g_ptr,
        ga_ptr,
        gs_ptr,
        R,
        C,
        D,
        span,
        HAS_IDS: tl.constexpr,
        RESIDENT: tl.constexpr,
        BLOCK_M: tl.constexpr,
        BLOCK_N: tl.constexpr,
        BLOCK_K: tl.constexpr,
        BLOCK_DO: tl.constexpr,
        PREC: tl.constexpr,
    ):
        """grad_a[rows, chunk] and grad_scale[rows] of BLOCK_M rows, looping over the columns
        of one split (``span`` columns); stored at [split, row]."""
        pid = tl.program_id(0)
        pid_d = tl.program_id(1)
        pid_s = tl.program_id(2)
        c_lo = pid_s * span
        c_hi = tl.minimum(C, c_lo + span)
        rows = pid * BLOCK_M + tl.arange(0, BLOCK_M)
        row_ok = rows < R
        scale = tl.load(scale_ptr + rows, mask=row_ok, other=0.0)
        g = tl.load(g_ptr + rows, mask=row_ok, other=0.0)
        lse = tl.load(lse_ptr + rows, mask=row_ok, other=0.0)
        live = row_ok & (lse > float("-inf"))
        scale2 = scale * 1.4426950408889634
        lse2 = tl.where(live, lse, 0.0) * 1.4426950408889634
        if HAS_IDS:
            rid = tl.load(rid_ptr + rows, mask=row_ok, other=-1)
        offs_do = pid_d * BLOCK_DO + tl.arange(0, BLOCK_DO)
        do_ok = offs_do < D
        a_rows = a_ptr + rows.to(tl.int64)[:, None] * D
        if RESIDENT:
            a_blk = tl.load(
                a_rows + offs_do[None, :], mask=row_ok[:, None] & do_ok[None, :], other=0.0
            )
        acc = tl.zeros([BLOCK_M, BLOCK_DO], dtype=tl.float32)
        ps = tl.zeros([BLOCK_M], dtype=tl.float32)
        for n0 in range(c_lo, c_hi, BLOCK_N):
            cols = n0 + tl.arange(0, BLOCK_N)
            col_ok = cols < c_hi
            b_blk = tl.load(
                b_ptr + cols.to(tl.int64)[:, None] * D + offs_do[None, :],
                mask=col_ok[:, None] & do_ok[None, :],
                other=0.0,
            )
            if RESIDENT:
                s = tl.dot(a_blk, tl.trans(b_blk), input_precision=PREC)
            else:
                s = _score_tile(
                    a_ptr, b_ptr, rows, cols, row_ok, col_ok, D, BLOCK_M, BLOCK_N, BLOCK_K, PREC
                )
            keep = live[:, None] & col_ok[None, :]
            if HAS_IDS:
                cid = tl.load(cid_ptr + cols, mask=col_ok, other=-1)
                keep = keep & (rid[:, None] != cid[None, :])
            p = tl.where(keep, tl.exp2(s * scale2[:, None] - lse2[:, None]), 0.0)
            ps += tl.sum(p * s, 1)
            acc = tl.dot(p.to(b_blk.dtype), b_blk, acc, input_precision=PREC)
        ga = acc * (g * scale)[:, None]
        ga_out = ga_ptr + pid_s.to(tl.int64) * R * D
        tl.store(
            ga_out + rows.to(tl.int64)[:, None] * D + offs_do[None, :],
            ga.to(ga_ptr.dtype.element_ty),
            mask=row_ok[:, None] & do_ok[None, :],
        )
        tl.store(gs_ptr + pid_s * R + rows, g * ps, mask=row_ok & (pid_d == 0))

    @triton.jit
    def _lse_bwd_cols_kernel(
        a_ptr,
        b_ptr,
        scale_ptr,
        rid_ptr,
        cid_ptr,
        lse_ptr,
        w_ptr,
        norm_ptr,
        gb_ptr,
        R,
        C,
        D,
        span,
        HAS_IDS: tl.constexpr,
        RESIDENT: tl.constexpr,
        BLOCK_M: tl.constexpr,
        BLOCK_N: tl.constexpr,
        BLOCK_K: tl.constexpr,
        BLOCK_DO: tl.constexpr,
        PREC: tl.constexpr,
    ):
        """grad_b[cols, chunk] of BLOCK_N columns, looping over the row blocks of one split
        (``span`` rows; the tiles are s^T); stored at [split, column]."""
        pid = tl.program_id(0)
        pid_d = tl.program_id(1)
        pid_s = tl.program_id(2)
        r_lo = pid_s * span
        r_hi = tl.minimum(R, r_lo + span)
        cols = pid * BLOCK_N + tl.arange(0, BLOCK_N)
        col_ok = cols < C
        if HAS_IDS:
            cid = tl.load(cid_ptr + cols, mask=col_ok, other=-1)
        offs_do = pid_d * BLOCK_DO + tl.arange(0, BLOCK_DO)
        do_ok = offs_do < D
        b_cols = b_ptr + cols.to(tl.int64)[:, None] * D
        if RESIDENT:
            b_blk = tl.load(
                b_cols + offs_do[None, :], mask=col_ok[:, None] & do_ok[None, :], other=0.0
            )
        acc = tl.zeros([BLOCK_N, BLOCK_DO], dtype=tl.float32)
        for m0 in range(r_lo, r_hi, BLOCK_M):
            rows = m0 + tl.arange(0, BLOCK_M)
            row_ok = rows < r_hi
            scale2 = tl.load(scale_ptr + rows, mask=row_ok, other=0.0) * 1.4426950408889634
            lse = tl.load(lse_ptr + rows, mask=row_ok, other=0.0)
            w = tl.load(w_ptr + rows, mask=row_ok, other=0.0)
            live = row_ok & (lse > float("-inf"))
            lse2 = tl.where(live, lse, 0.0) * 1.4426950408889634
            a_blk = tl.load(
                a_ptr + rows.to(tl.int64)[:, None] * D + offs_do[None, :],
                mask=row_ok[:, None] & do_ok[None, :],
                other=0.0,
            )
            if RESIDENT:
                st = tl.dot(b_blk, tl.trans(a_blk), input_precision=PREC)
            else:
                st = _score_tile(
                    b_ptr, a_ptr, cols, rows, col_ok, row_ok, D, BLOCK_N, BLOCK_M, BLOCK_K, PREC
                )
            keep = live[None, :]
            if HAS_IDS:
                rid = tl.load(rid_ptr + rows, mask=row_ok, other=-1)
                keep = keep & (cid[:, None] != rid[None, :])
            wt = tl.where(keep, tl.exp2(st * scale2[None, :] - lse2[None, :]) * w[None, :], 0.0)
            acc = tl.dot(wt.to(a_blk.dtype), a_blk, acc, input_precision=PREC)
        gb = acc * tl.load(norm_ptr)
        gb_out = gb_ptr + pid_s.to(tl.int64) * C * D
        tl.store(
            gb_out + cols.to(tl.int64)[:, None] * D + offs_do[None, :],
            gb.to(gb_ptr.dtype.element_ty),
            mask=col_ok[:, None] & do_ok[None, :],
        )


# ----------------------------------------------------------------------------------------------
# launch configuration


@dataclass(frozen=True)
class _Config:
    """Block shape of one launch. ``resident``: the whole (padded) D is one tile."""

    block_m: int
    block_n: int
    block_k: int
    block_do: int
    resident: bool
    num_warps: int
    num_stages: int


def _pad_d(d: int) -> int:
    """Next power of two of ``d``, at least 16 (tl.dot needs K >= 16)."""
    return max(16, 1 << (max(d, 1) - 1).bit_length())


def _forward_configs(d: int, dtype: torch.dtype, exact: bool = False) -> list[_Config]:
    """Forward candidates, best guess first (H100 / H200), then ones needing less memory.

    ``exact``: float32 without tf32, where the products run on the FMA units: a K loop of
    narrow slices (a resident 128 x 128 float32 tile spills to local memory there).
    """
    bd = _pad_d(d)
    big = 128 if dtype == torch.float32 else 256
    if exact:
        first = _Config(128, 64, 32, 32, False, 8, 2)
    elif bd <= big:
        first = _Config(128, 64, bd, bd, True, 8, 3)
    else:
        first = _Config(128, 64, 64, 64, False, 8, 3)
    return [
        first,
        replace(first, num_stages=2),
        _Config(64, 64, 64, 64, False, 4, 2),
        _Config(32, 32, 32, 32, False, 4, 1),
    ]


def _backward_configs(d: int, dtype: torch.dtype, side: str, exact: bool = False) -> list[_Config]:
    """Backward candidates for the ``"rows"`` (grad_a) or ``"cols"`` (grad_b) kernel.

    The program's own block (rows for grad_a, columns for grad_b) holds a float32
    (block x BLOCK_DO) accumulator besides the score tile, so it is 128 for D <= 128 and 64
    above; float32 inputs stream narrower tiles of the other side, and at D = 256 build the
    scores by a K loop rather than keep both 256-wide tiles (which spills registers).
    ``exact``: float32 without tf32 (FMA products), as in :func:`_forward_configs`.
    """
    bd = _pad_d(d)
    fp32 = dtype == torch.float32
    if exact:  # FMA products: K loop, D in chunks of 128
        own, other, bk, bdo, resident = 64, 64, 32, min(bd, 128), False
    elif bd <= 128:
        own, other, bk, bdo, resident = 128, (32 if fp32 else 64), bd, bd, True
    elif bd <= 256 and not fp32:
        own, other, bk, bdo, resident = 64, 64, bd, bd, True
    elif bd <= 256:
        own, other, bk, bdo, resident = 64, 64, 32, 256, False
    else:
        own, other, bk, bdo, resident = 64, 64, 64, 256, False
    if side == "rows":
        first = _Config(own, other, bk, bdo, resident, 8, 2)
    else:
        first = _Config(other, own, bk, bdo, resident, 8, 2)
    return [
        first,
        replace(first, num_stages=1),
        _Config(64, 64, 64, min(bd, 128), False, 4, 2),
        _Config(32, 32, 32, min(bd, 64), False, 4, 1),
    ]


def _check_config(cfg: _Config, d: int, width: int) -> None:
    """A resident config must cover all of D in one tile of ``width`` columns."""
    if cfg.resident and width < d:
        raise ValueError(f"resident config {cfg} is narrower than D = {d}")


_CHOSEN: dict[tuple[Any, ...], int] = {}


def _launch(name: str, configs: list[_Config], key: tuple[Any, ...], run: Any) -> Any:
    """``run(config)`` with the first config that fits the device (memo per ``key``)."""
    memo = (name, *key, tuple(configs))
    for i in range(_CHOSEN.get(memo, 0), len(configs)):
        try:
            out = run(configs[i])
        except OutOfResources:
            continue
        _CHOSEN[memo] = i
        return out
    raise RuntimeError(f"triton_kernels: no launch configuration of {name} fits this device")


@functools.cache
def _sm_count(index: int) -> int:
    """Streaming multiprocessors of CUDA device ``index``."""
    return torch.cuda.get_device_properties(index).multi_processor_count


def _split(
    programs: int, inner: int, block: int, device: torch.device, split: int | None
) -> tuple[int, int]:
    """``(splits, span)``: cut the loop over ``inner`` rows / columns into ``splits`` ranges of
    ``span`` (a multiple of ``block``) when ``programs`` would leave SMs idle.

    Each split writes float32 partials that the host then merges in a fixed order (logsumexp
    of partial lse; sum of partial gradients), so results stay deterministic. Below one wave
    (e.g. R = 8192 rows in blocks of 128 is 64 programs on 132 SMs) this fills the chip.
    """
    blocks = triton.cdiv(inner, block)
    if split is None:
        split = 1
        if device.type == "cuda":
            index = device.index if device.index is not None else torch.cuda.current_device()
            sms = _sm_count(index)
            if programs < sms:
                split = min(8, sms // programs, max(1, blocks // 2))
    span = triton.cdiv(blocks, max(1, min(split, blocks))) * block
    return triton.cdiv(inner, span), span


# ----------------------------------------------------------------------------------------------
# host side


def _precision(dtype: torch.dtype) -> str:
    """Triton ``input_precision`` for float32 products: tf32 only when torch allows it."""
    if dtype == torch.float32 and not tf32_enabled():
        return "ieee"
    return "tf32"


def _check(
    a: Tensor,
    b: Tensor,
    scale_vec: Tensor,
    row_ids: Tensor | None,
    col_ids: Tensor | None,
) -> tuple[Tensor, Tensor, Tensor, Tensor | None, Tensor | None]:
    """Validate shapes / dtypes and return contiguous operands (float32 scale, int64 ids)."""
    if triton is None:
        raise RuntimeError("triton_kernels: triton is not installed")
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"a (R, D) and b (C, D) expected, got {tuple(a.shape)}, {tuple(b.shape)}")
    if a.dtype not in _DTYPES or b.dtype != a.dtype:
        raise ValueError(f"a and b must share a float32/bf16/fp16 dtype, got {a.dtype}, {b.dtype}")
    if b.device != a.device or scale_vec.device != a.device:
        raise ValueError("a, b and scale_vec must be on one device")
    if scale_vec.shape != (a.shape[0],):
        raise ValueError(f"scale_vec must be ({a.shape[0]},), got {tuple(scale_vec.shape)}")
    if row_ids is None or col_ids is None:  # as the PyTorch tiles: no exclusion without both
        row_ids = col_ids = None
    else:
        if row_ids.shape != (a.shape[0],) or col_ids.shape != (b.shape[0],):
            raise ValueError("row_ids must be (R,) and col_ids (C,)")
        row_ids = row_ids.to(device=a.device, dtype=torch.int64).contiguous()
        col_ids = col_ids.to(device=a.device, dtype=torch.int64).contiguous()
    return (
        a.contiguous(),
        b.contiguous(),
        scale_vec.detach().to(torch.float32).contiguous(),
        row_ids,
        col_ids,
    )


def _pad_to_16(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Zero-pad D of CUDA operands to a multiple of 16 (the zeros add nothing to any product).

    Triton specialises an int argument divisible by 16, which makes every row start 32-byte
    aligned: the tile loads are then vectorised and software-pipelined (cp.async); with any
    other D they are scalar and synchronous. The copy is O((R + C) D), the kernels O(R C D).
    Interpreter (CPU) runs keep D as is, so the tests exercise the masked K tail.
    """
    d = a.shape[1]
    if not a.is_cuda or d % 16 == 0:
        return a, b
    pad = 16 - d % 16
    return torch.nn.functional.pad(a, (0, pad)), torch.nn.functional.pad(b, (0, pad))


def _device_guard(t: Tensor) -> Any:
    """Make ``t``'s CUDA device current for the launch (a no-op context on CPU)."""
    if t.is_cuda:
        return torch.cuda.device(t.device)
    return _NullContext()


class _NullContext:
    """Context manager that does nothing (CPU tensors under the Triton interpreter)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def triton_lse_forward(
    a: Tensor,
    b: Tensor,
    scale_vec: Tensor,
    row_ids: Tensor | None,
    col_ids: Tensor | None,
    *,
    configs: list[_Config] | None = None,
    split: int | None = None,
) -> Tensor:
    """Masked row-logsumexp of ``scale_vec[:, None] * (a @ b.T)`` without forming the matrix.

    Args:
        a: (R, D) float32 / bf16 / fp16 CUDA tensor (made contiguous).
        b: (C, D), same dtype and device as ``a``.
        scale_vec: (R,) per-row scale (used as float32).
        row_ids: optional (R,) integer ids; entry (i, j) is left out when
            ``row_ids[i] == col_ids[j]`` (nothing is left out unless both are given).
        col_ids: optional (C,) integer ids.
        configs: launch configurations to try, in order (default :func:`_forward_configs`);
            for tests and benchmarks.
        split: how many ranges the column loop is cut into (default: by :func:`_split`).

    Returns:
        (R,) float32 lse; -inf on rows whose every entry is excluded (or when C == 0).
    """
    a, b, scale_vec, row_ids, col_ids = _check(a, b, scale_vec, row_ids, col_ids)
    r, c = a.shape[0], b.shape[0]
    if r == 0 or c == 0:
        return torch.full((r,), float("-inf"), dtype=torch.float32, device=a.device)
    a, b = _pad_to_16(a, b)
    d = a.shape[1]
    has_ids = row_ids is not None
    rid = row_ids if row_ids is not None else scale_vec  # placeholder, never read
    cid = col_ids if col_ids is not None else scale_vec
    prec = _precision(a.dtype)
    configs = configs or _forward_configs(d, a.dtype, exact=prec == "ieee")

    def run(cfg: _Config) -> Tensor:
        _check_config(cfg, d, cfg.block_k)
        programs = triton.cdiv(r, cfg.block_m)
        splits, span = _split(programs, c, cfg.block_n, a.device, split)
        lse = torch.empty(splits, r, dtype=torch.float32, device=a.device)
        _lse_fwd_kernel[(programs, splits)](
            a, b, scale_vec, rid, cid, lse, r, c, d, span,
            HAS_IDS=has_ids, RESIDENT=cfg.resident, BLOCK_M=cfg.block_m,
            BLOCK_N=cfg.block_n, BLOCK_K=cfg.block_k, PREC=prec,
            num_warps=cfg.num_warps, num_stages=cfg.num_stages,
        )  # fmt: skip
        return lse[0] if splits == 1 else torch.logsumexp(lse, 0)

    with _device_guard(a):
        return _launch("fwd", configs, (a.dtype, _pad_d(d), has_ids, prec, str(a.device)), run)


def triton_lse_backward(
    a: Tensor,
    b: Tensor,
    scale_vec: Tensor,
    row_ids: Tensor | None,
    col_ids: Tensor | None,
    lse: Tensor,
    grad_lse: Tensor,
    *,
    row_configs: list[_Config] | None = None,
    col_configs: list[_Config] | None = None,
    split: int | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Gradients of :func:`triton_lse_forward` w.r.t. ``a``, ``b`` and ``scale_vec``.

    Args:
        a, b, scale_vec, row_ids, col_ids: as given to :func:`triton_lse_forward`.
        lse: (R,) the forward's output (rows at -inf get zero gradient).
        grad_lse: (R,) upstream gradient of lse.
        row_configs, col_configs: launch configurations of the grad_a and the grad_b kernel
            to try, in order (default :func:`_backward_configs`); for tests and benchmarks.
        split: how many ranges each kernel's inner loop is cut into (default: by
            :func:`_split`).

    Returns:
        ``(grad_a, grad_b, grad_scale_vec)``: (R, D) in ``a``'s dtype, (C, D) in ``b``'s dtype
        and (R,) float32. Deterministic: no atomics, fixed summation order.
    """
    a, b, scale_vec, row_ids, col_ids = _check(a, b, scale_vec, row_ids, col_ids)
    r, d = a.shape
    c = b.shape[0]
    if lse.shape != (r,) or grad_lse.shape != (r,):
        raise ValueError(f"lse and grad_lse must be ({r},)")
    lse = lse.detach().to(device=a.device, dtype=torch.float32).contiguous()
    g = grad_lse.detach().to(device=a.device, dtype=torch.float32)
    g = torch.where(torch.isneginf(lse), 0.0, g).contiguous()  # no gradient on empty rows
    if r == 0 or c == 0 or d == 0:
        grad_s = torch.zeros(r, dtype=torch.float32, device=a.device)
        return torch.zeros_like(a), torch.zeros_like(b), grad_s
    a, b = _pad_to_16(a, b)
    d_in, d = d, a.shape[1]
    has_ids = row_ids is not None
    rid = row_ids if row_ids is not None else scale_vec  # placeholder, never read
    cid = col_ids if col_ids is not None else scale_vec
    prec = _precision(a.dtype)
    # grad_b weights g_i scale_i, normalised to max 1 so fp16 products cannot underflow
    weight = g * scale_vec
    norm = weight.abs().amax().clamp_min(torch.finfo(torch.float32).tiny).reshape(1)
    w = (weight / norm).contiguous()
    key = (a.dtype, _pad_d(d), has_ids, prec, str(a.device))

    def run_rows(cfg: _Config) -> tuple[Tensor, Tensor]:
        _check_config(cfg, d, cfg.block_do)
        grid = (triton.cdiv(r, cfg.block_m), triton.cdiv(d, cfg.block_do))
        splits, span = _split(grid[0] * grid[1], c, cfg.block_n, a.device, split)
        if splits == 1:
            ga, gs = torch.empty_like(a), torch.empty(r, dtype=torch.float32, device=a.device)
        else:
            ga = torch.empty(splits, r, d, dtype=torch.float32, device=a.device)
            gs = torch.empty(splits, r, dtype=torch.float32, device=a.device)
        _lse_bwd_rows_kernel[(*grid, splits)](
            a, b, scale_vec, rid, cid, lse, g, ga, gs, r, c, d, span,
            HAS_IDS=has_ids, RESIDENT=cfg.resident, BLOCK_M=cfg.block_m,
            BLOCK_N=cfg.block_n, BLOCK_K=cfg.block_k, BLOCK_DO=cfg.block_do, PREC=prec,
            num_warps=cfg.num_warps, num_stages=cfg.num_stages,
        )  # fmt: skip
        if splits == 1:
            return ga, gs
        return ga.sum(0).to(a.dtype), gs.sum(0)

    def run_cols(cfg: _Config) -> Tensor:
        _check_config(cfg, d, cfg.block_do)
        grid = (triton.cdiv(c, cfg.block_n), triton.cdiv(d, cfg.block_do))
        splits, span = _split(grid[0] * grid[1], r, cfg.block_m, a.device, split)
        if splits == 1:
            gb = torch.empty_like(b)
        else:
            gb = torch.empty(splits, c, d, dtype=torch.float32, device=a.device)
        _lse_bwd_cols_kernel[(*grid, splits)](
            a, b, scale_vec, rid, cid, lse, w, norm, gb, r, c, d, span,
            HAS_IDS=has_ids, RESIDENT=cfg.resident, BLOCK_M=cfg.block_m,
            BLOCK_N=cfg.block_n, BLOCK_K=cfg.block_k, BLOCK_DO=cfg.block_do, PREC=prec,
            num_warps=cfg.num_warps, num_stages=cfg.num_stages,
        )  # fmt: skip
        return gb if splits == 1 else gb.sum(0).to(b.dtype)

    with _device_guard(a):
        exact = prec == "ieee"
        rows = row_configs or _backward_configs(d, a.dtype, "rows", exact)
        cols = col_configs or _backward_configs(d, a.dtype, "cols", exact)
        grad_a, grad_s = _launch("rows", rows, key, run_rows)
        grad_b = _launch("cols", cols, key, run_cols)
    if d != d_in:
        grad_a, grad_b = grad_a[:, :d_in].contiguous(), grad_b[:, :d_in].contiguous()
    return grad_a, grad_b, grad_s
