"""The fused Triton row-logsumexp kernels (manyview.losses.engine.triton_kernels) against a float64
dense reference: on CUDA when there is a device, and on CPU through Triton's interpreter."""

from __future__ import annotations

import importlib.util
import inspect
import textwrap

import pytest
import torch
from torch import Tensor

from manyview.losses.engine import triton_kernels

F32 = torch.float32
HAS_TRITON = importlib.util.find_spec("triton") is not None
CUDA = torch.cuda.is_available() and HAS_TRITON


def dense_reference(
    a: Tensor,
    b: Tensor,
    scale: Tensor,
    row_ids: Tensor | None,
    col_ids: Tensor | None,
    grad_lse: Tensor,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """float64 (lse, grad_a, grad_b, grad_scale) from the full matrix and autograd."""
    a = a.detach().double().requires_grad_(True)
    b = b.detach().double().requires_grad_(True)
    scale = scale.detach().double().requires_grad_(True)
    x = scale[:, None] * (a @ b.T)
    if row_ids is not None and col_ids is not None:
        excluded = row_ids[:, None] == col_ids[None, :]
    else:
        excluded = torch.zeros(x.shape, dtype=torch.bool, device=x.device)
    dead = excluded.all(1)  # rows with nothing left: lse = -inf, no gradient
    x = x.masked_fill(excluded, float("-inf")).masked_fill(dead[:, None], 0.0)
    lse = torch.logsumexp(x, 1)
    (lse.masked_fill(dead, 0.0) * grad_lse.double().masked_fill(dead, 0.0)).sum().backward()
    return lse.detach().masked_fill(dead, float("-inf")), a.grad, b.grad, scale.grad


def rel_err(x: Tensor, ref: Tensor) -> float:
    """‖x − ref‖ / ‖ref‖ in float64 (NaN anywhere gives inf)."""
    x = x.double().to(ref.device)
    if not torch.isfinite(x).all():
        return float("inf")
    return ((x - ref).norm() / ref.norm().clamp_min(1e-300)).item()


def test_imports_and_availability():
    assert callable(triton_kernels.triton_lse_forward)
    assert callable(triton_kernels.triton_lse_backward)
    assert isinstance(triton_kernels.available(), bool)
    if not torch.cuda.is_available():
        assert triton_kernels.available() is False


@pytest.mark.skipif(not HAS_TRITON, reason="needs triton")
def test_bad_input_is_rejected_before_any_launch():
    a, b, s = torch.randn(4, 8), torch.randn(5, 8), torch.ones(4)
    with pytest.raises(ValueError, match=r"row_ids must be \(R,\)"):
        triton_kernels.triton_lse_forward(a, b, s, torch.arange(3), torch.arange(5))
    with pytest.raises(ValueError, match="dtype"):
        triton_kernels.triton_lse_forward(a, b.double(), s, None, None)
    with pytest.raises(ValueError, match=r"\(C, D\)"):
        triton_kernels.triton_lse_forward(a, torch.randn(5, 7), s, None, None)
    with pytest.raises(ValueError, match="scale_vec"):
        triton_kernels.triton_lse_forward(a, b, torch.ones(3), None, None)
    # empty column set: every lse is -inf, no kernel needed
    lse = triton_kernels.triton_lse_forward(a, b[:0], s, None, None)
    assert lse.shape == (4,) and torch.isneginf(lse).all()


# ----------------------------------------------------------------------------------------------
# Triton interpreter on CPU (checks the kernels' logic without a GPU)

_INTERPRETER_PRELUDE = """
import os
import sys
import time

os.environ["TRITON_INTERPRET"] = "1"  # before triton is imported
import triton.runtime.interpreter as _ti

# triton 3.6's interpreter calls int() on 1-element arrays, which numpy >= 2.4 refuses for
# loop bounds such as range(0, C, BLOCK_N) (triton-lang/triton#9171, fixed upstream by #9172)
if hasattr(_ti, "_patch_lang_tensor"):
    _orig = _ti._patch_lang_tensor

    def _patched(tensor, scope):
        _orig(tensor, scope)
        scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.reshape(())))

    _ti._patch_lang_tensor = _patched
"""

_INTERPRETER_SCRIPT = (
    _INTERPRETER_PRELUDE
    + """
import torch
from torch import Tensor

from manyview.losses.engine import triton_kernels as tt
from manyview.losses.engine.triton_kernels import _Config

{reference}

{rel_err}

gen = torch.Generator().manual_seed(0)
R, C, D = 40, 37, 24
RESIDENT = _Config(16, 16, 32, 32, True, 4, 1)  # one tile covers D = 24
STREAMED = _Config(16, 16, 16, 16, False, 4, 1)  # K loop of 2 and two D chunks
CASES = [  # (dtype, config, ids, splits of the inner loop)
    (torch.float32, RESIDENT, "none", 1),
    (torch.float32, RESIDENT, "ids", 1),
    (torch.float32, RESIDENT, "dead", 2),
    (torch.float32, STREAMED, "none", 3),
    (torch.float32, STREAMED, "ids", 1),
    (torch.float32, STREAMED, "dead", 1),
    (torch.float16, RESIDENT, "ids", 2),
    (torch.float16, STREAMED, "none", 1),
]
t0 = time.time()
for dtype, cfg, ids, split in CASES:
    a = torch.randn(R, D, generator=gen).to(dtype)
    b = torch.randn(C, D, generator=gen).to(dtype)
    scale = 0.2 + torch.rand(R, generator=gen)
    g = torch.randn(R, generator=gen) * (1e-3 if dtype == torch.float16 else 1.0)
    rid = cid = None
    if ids == "ids":  # a few exclusions per row
        rid = torch.randint(0, 6, (R,), generator=gen)
        cid = torch.randint(0, 6, (C,), generator=gen)
    elif ids == "dead":  # rows with id 3 lose every column
        rid = torch.randint(0, 6, (R,), generator=gen)
        rid[:2] = 3
        cid = torch.full((C,), 3)
        g[rid == 3] = float("nan")  # must not leak: empty rows get no gradient
    lse = tt.triton_lse_forward(a, b, scale, rid, cid, configs=[cfg], split=split)
    ga, gb, gs = tt.triton_lse_backward(
        a, b, scale, rid, cid, lse, g, row_configs=[cfg], col_configs=[cfg], split=split
    )
    ref = dense_reference(a, b, scale, rid, cid, g)
    dead = torch.isneginf(ref[0])
    assert torch.equal(torch.isneginf(lse), dead), (dtype, cfg, ids, split)
    tol = 1e-5 if dtype == torch.float32 else 2e-3
    errs = [rel_err(lse[~dead], ref[0][~dead])]
    errs += [rel_err(x, y) for x, y in zip((ga, gb, gs), ref[1:])]
    assert ga.dtype == dtype and gb.dtype == dtype and gs.dtype == torch.float32
    assert max(errs[:1] + errs[3:]) < 1e-5 and max(errs) < tol, (dtype, cfg, ids, split, errs)
    if dead.any():
        assert (ga[dead] == 0).all() and (gs[dead] == 0).all()
    print(dtype, cfg.resident, ids, split, ["%.1e" % e for e in errs])
print("OK %.1fs" % (time.time() - t0))
"""
)


@pytest.mark.slow
@pytest.mark.skipif(not HAS_TRITON, reason="needs triton")
def test_kernels_in_the_triton_interpreter(run_python):
    script = _INTERPRETER_SCRIPT.format(
        reference=textwrap.dedent(inspect.getsource(dense_reference)),
        rel_err=textwrap.dedent(inspect.getsource(rel_err)),
    )
    result = run_python("-c", script, env={"TRITON_INTERPRET": "1"}, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout


_INTERPRETER_LOSSES_SCRIPT = (
    _INTERPRETER_PRELUDE
    + """
import inspect

import torch

import manyview
from manyview.losses.engine import default_triton_backend, triton_kernels as tt
from manyview.testing import build

assert tt.available() and tt.takes(torch.zeros(1)), "the interpreter should take CPU tensors"
backend = default_triton_backend()  # the one the losses share
torch.backends.cuda.matmul.allow_tf32 = TF32  # the tf32 (default) or the exact-float32 configs
calls = {"forward": 0, "backward": 0}
for kind in calls:
    kernel = getattr(tt, f"triton_lse_{kind}")

    def counted(*args, kernel=kernel, kind=kind):
        calls[kind] += 1
        return kernel(*args)

    setattr(tt, f"triton_lse_{kind}", counted)

gen = torch.Generator().manual_seed(0)
checked = []
for name in manyview.available("loss"):
    if "engine" not in inspect.signature(manyview.entry("loss", name).load()).parameters:
        continue
    extra = {"base": "infonce"} if name == "pwe" else {}  # a base by name can take an engine
    dense = build("loss", name, engine="dense", **extra)
    # N = 50 instances: 100 to 200 rows, so the default 128 x 64 blocks have ragged edges
    views, inputs = dense.example_inputs(50, d=24, generator=gen)
    out = {}
    for engine in ("dense", "tiled"):
        loss = build("loss", name, engine=engine, **extra)
        before = dict(calls)
        x = views.clone().requires_grad_()
        value = loss(x, **inputs)
        value.backward()
        ran = {k: calls[k] - before[k] for k in calls}
        assert (min(ran.values()) > 0) == (engine == "tiled"), (name, engine, ran)
        out[engine] = value.detach(), x.grad
    assert not backend.failures, backend.failures  # no silent fallback
    # the interpreter's products are float32 whatever the precision flag: float32 rounding
    errs = [((u - w).abs().max() / w.abs().max()).item() for u, w in zip(*out.values())]
    assert max(errs) < 1e-5, (name, errs)
    checked.append(name)
    print(name, ["%.1e" % e for e in errs])
# the engine's self-check ran the kernels once per configuration (ids or not) and passed
assert len(backend.checks) == 2 and all(backend.checks.values()), backend.checks
print("OK", sorted(checked), calls)
"""
)


@pytest.mark.slow
@pytest.mark.skipif(not HAS_TRITON, reason="needs triton")
@pytest.mark.parametrize("tf32", [True, False], ids=["tf32-configs", "exact-configs"])
def test_every_tiled_loss_through_the_kernels_in_the_interpreter(run_python, tf32):
    """Every registered loss with an ``engine`` option, ``engine="tiled"`` with the Triton
    kernels (the default launch configs, run in Triton's CPU interpreter, through the same
    dispatch as on CUDA) against ``engine="dense"``: value and gradient, float32."""
    script = _INTERPRETER_LOSSES_SCRIPT.replace("TF32", str(tf32))
    result = run_python("-c", script, env={"TRITON_INTERPRET": "1"}, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout
    for name in ("infonce", "clip", "mv_infonce", "mv_dhel", "supcon", "isogclr", "pwe"):
        assert repr(name) in result.stdout


# ----------------------------------------------------------------------------------------------
# CUDA


def _inputs(
    r: int, c: int, d: int, dtype: torch.dtype, ids: str, seed: int
) -> tuple[Tensor, Tensor, Tensor, Tensor | None, Tensor | None, Tensor]:
    """Random unit-norm rows (like normalised embeddings), per-row scales, ids, grad_lse."""
    gen = torch.Generator(device="cuda").manual_seed(seed)
    a = torch.nn.functional.normalize(torch.randn(r, d, device="cuda", generator=gen), dim=1)
    b = torch.nn.functional.normalize(torch.randn(c, d, device="cuda", generator=gen), dim=1)
    scale = 5.0 + 15.0 * torch.rand(r, device="cuda", generator=gen)  # temperatures 0.2..0.05
    g = torch.randn(r, device="cuda", generator=gen) / r
    rid = cid = None
    if ids == "ids":  # random ids: a few excluded entries per row
        rid = torch.randint(0, max(r, c) // 4 + 1, (r,), device="cuda", generator=gen)
        cid = torch.randint(0, max(r, c) // 4 + 1, (c,), device="cuda", generator=gen)
    elif ids == "dead":  # row 0 and every row with id 7 lose every column
        rid = torch.randint(0, 20, (r,), device="cuda", generator=gen)
        rid[0] = 7
        cid = torch.full((c,), 7, device="cuda")
    return a.to(dtype), b.to(dtype), scale, rid, cid, g


def _check_case(
    shape: tuple[int, int, int], dtype: torch.dtype, ids: str, tf32: bool, seed: int = 0
) -> None:
    """Forward and backward against the float64 reference, with dtype-dependent tolerances."""
    r, c, d = shape
    a, b, scale, rid, cid, g = _inputs(r, c, d, dtype, ids, seed)
    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    try:
        lse = triton_kernels.triton_lse_forward(a, b, scale, rid, cid)
        ga, gb, gs = triton_kernels.triton_lse_backward(a, b, scale, rid, cid, lse, g)
        torch.cuda.synchronize()
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old
    ref = dense_reference(a, b, scale, rid, cid, g)
    dead = torch.isneginf(ref[0])
    assert torch.equal(torch.isneginf(lse), dead)
    assert lse.dtype == torch.float32 and gs.dtype == torch.float32
    assert ga.dtype == dtype and gb.dtype == dtype
    if dtype == torch.float32 and not tf32:
        tol_lse, tol_grad = 1e-5, 1e-5
    elif dtype == torch.float32:
        tol_lse, tol_grad = 1e-3, 5e-3
    else:
        tol_lse, tol_grad = 1e-3, 2e-2
    err_lse = rel_err(lse[~dead], ref[0][~dead])
    errs = [rel_err(x, y) for x, y in zip((ga, gb, gs), ref[1:])]
    assert err_lse < tol_lse, (shape, dtype, ids, tf32, err_lse)
    assert max(errs) < tol_grad, (shape, dtype, ids, tf32, errs)
    if dead.any():
        assert (ga[dead] == 0).all() and (gs[dead] == 0).all()


SHAPES = [(1000, 777, 100), (256, 256, 128), (300, 200, 256), (129, 65, 600), (64, 96, 1024)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("ids", ["none", "ids", "dead"])
@pytest.mark.parametrize(
    ("dtype", "tf32"),
    [(torch.float32, False), (torch.float32, True), (torch.bfloat16, True), (torch.float16, True)],
)
@pytest.mark.cuda
@pytest.mark.skipif(not CUDA, reason="needs a CUDA device and triton")
def test_cuda_matches_dense_reference(shape, ids, dtype, tf32):
    _check_case(shape, dtype, ids, tf32)


@pytest.mark.cuda
@pytest.mark.skipif(not CUDA, reason="needs a CUDA device and triton")
def test_cuda_backward_is_deterministic_and_noncontiguous_input_works():
    a, b, scale, rid, cid, g = _inputs(513, 400, 128, torch.bfloat16, "ids", 1)
    a_t = a.T.contiguous().T  # same values, column-major strides
    lse = triton_kernels.triton_lse_forward(a_t, b, scale, rid, cid)
    assert torch.equal(lse, triton_kernels.triton_lse_forward(a, b, scale, rid, cid))
    first = triton_kernels.triton_lse_backward(a, b, scale, rid, cid, lse, g)
    second = triton_kernels.triton_lse_backward(a_t, b, scale, rid, cid, lse, g)
    for x, y in zip(first, second):
        assert torch.equal(x, y)


@pytest.mark.cuda
@pytest.mark.skipif(not CUDA, reason="needs a CUDA device and triton")
def test_cuda_every_config_of_the_fallback_list():
    """The smaller configs tried when the first one does not fit the device are correct too."""
    a, b, scale, rid, cid, g = _inputs(200, 150, 200, torch.float32, "ids", 2)
    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        ref = dense_reference(a, b, scale, rid, cid, g)
        exact = [False] * 4 + [True] * 4  # the tf32 and the exact-float32 lists
        fwd = [c for e in (False, True) for c in triton_kernels._forward_configs(200, F32, e)]
        rows = [
            c for e in (False, True) for c in triton_kernels._backward_configs(200, F32, "rows", e)
        ]
        cols = [
            c for e in (False, True) for c in triton_kernels._backward_configs(200, F32, "cols", e)
        ]
        for i in range(len(fwd)):
            try:
                lse = triton_kernels.triton_lse_forward(a, b, scale, rid, cid, configs=[fwd[i]])
                grads = triton_kernels.triton_lse_backward(
                    a, b, scale, rid, cid, lse, g, row_configs=[rows[i]], col_configs=[cols[i]]
                )
            except RuntimeError as err:  # too large for this device's shared memory
                assert "fits" in str(err) and i % 4 < 3 and not exact[i]
                continue
            assert rel_err(lse, ref[0]) < 1e-5
            assert max(rel_err(x, y) for x, y in zip(grads, ref[1:])) < 1e-5, i
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old


@pytest.mark.cuda
@pytest.mark.skipif(not CUDA, reason="needs a CUDA device and triton")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cuda_split_inner_loop_matches_unsplit(dtype):
    """Splitting the inner loop (partials merged on the host) changes only rounding."""
    a, b, scale, rid, cid, g = _inputs(700, 900, 128, dtype, "ids", 3)
    ref = dense_reference(a, b, scale, rid, cid, g)
    tol = 1e-2 if dtype == torch.bfloat16 else 5e-3  # tf32 or bf16 products
    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        for split in (1, 2, 5, 64):
            lse = triton_kernels.triton_lse_forward(a, b, scale, rid, cid, split=split)
            grads = triton_kernels.triton_lse_backward(a, b, scale, rid, cid, lse, g, split=split)
            assert rel_err(lse, ref[0]) < 1e-3, split
            assert max(rel_err(x, y) for x, y in zip(grads, ref[1:])) < tol, split
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old
