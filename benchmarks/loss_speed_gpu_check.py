"""GPU check of the fused Triton row-logsumexp (manyview.losses.engine.triton_kernels): correctness
against a dense float64 reference, then speed and memory against dense PyTorch.

    python benchmarks/loss_speed_gpu_check.py [--quick] [--sweep] [--no-dense]

1. Checks: forward (lse) and backward (grad_a, grad_b, grad_scale) of the Triton kernels
   against float64 autograd through the full matrix, for a few shapes, with and without
   excluded entries, in float32 (exact and tf32), bf16 and fp16. Error is ‖x − ref‖ / ‖ref‖.
2. Speed, NT-Xent-like (both directions at once): z of R = C = 2N rows, a = b = z, each row's
   own entry excluded (row_ids = col_ids = arange(2N)), one scale 1/0.07, for N in
   {4096, 8192, 16384, 32768} and D in {128, 256}, in tf32 and bf16. One step is the forward
   plus the backward (grad_z = grad_a + grad_b). Times are CUDA-event medians of 20 steps after
   3 warm-up steps; TFLOP/s counts 2 R C D flops per product, 1 forward and 3 backward
   products (the kernels do 4 backward products: each backward kernel recomputes the scores);
   peak is torch.cuda.max_memory_allocated during one step, less what was allocated before.
   The dense reference materialises the (R, C) logits, runs logsumexp and autograd; a case
   that runs out of memory prints OOM.
3. ``--sweep``: forward and backward (rows / cols kernel configs) times of a few other
   block configurations at one shape, to retune ``_forward_configs`` / ``_backward_configs``.

Needs CUDA and triton; runs in about 1-2 minutes on one H100 (most of it compilation and the
dense reference at N = 32768).
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import astuple, replace

import torch
from torch import Tensor

from manyview.losses.engine import triton_kernels as tt

TAU = 0.07
START = time.time()
BUDGET_S = 160.0
# mode: (dtype, tf32, lse tolerance, gradient tolerance)
MODES = {
    "fp32": (torch.float32, False, 1e-5, 1e-5),
    "tf32": (torch.float32, True, 1e-3, 5e-3),
    "bf16": (torch.bfloat16, True, 1e-3, 2e-2),
    "fp16": (torch.float16, True, 1e-3, 2e-2),
}
# (R, C, D, mode, ids): few enough kernel variants to compile in well under a minute
CHECKS = [
    (1000, 777, 100, "fp32", "none"),
    (1000, 777, 100, "fp32", "self"),
    (1000, 777, 100, "tf32", "self"),
    (1000, 777, 100, "bf16", "none"),
    (1000, 777, 100, "bf16", "self"),
    (1000, 777, 100, "fp16", "self"),
    (4096, 4096, 256, "tf32", "self"),
    (4096, 4096, 256, "bf16", "self"),
    (640, 520, 768, "tf32", "self"),
    (640, 520, 768, "bf16", "self"),
]  # skip the remaining dense references past this (the script must stay < 3 min)


def reference(
    a: Tensor,
    b: Tensor,
    scale: Tensor,
    row_ids: Tensor | None,
    col_ids: Tensor | None,
    g: Tensor,
) -> tuple[Tensor, ...]:
    """float64 (lse, grad_a, grad_b, grad_scale) through the full matrix and autograd."""
    a = a.detach().double().requires_grad_(True)
    b = b.detach().double().requires_grad_(True)
    scale = scale.detach().double().requires_grad_(True)
    x = scale[:, None] * (a @ b.T)
    excluded = torch.zeros(x.shape, dtype=torch.bool, device=x.device)
    if row_ids is not None and col_ids is not None:
        excluded = row_ids[:, None] == col_ids[None, :]
    dead = excluded.all(1)
    x = x.masked_fill(excluded, float("-inf")).masked_fill(dead[:, None], 0.0)
    lse = torch.logsumexp(x, 1)
    (lse.masked_fill(dead, 0.0) * g.double()).sum().backward()
    return lse.detach().masked_fill(dead, float("-inf")), a.grad, b.grad, scale.grad


def rel_err(x: Tensor, ref: Tensor) -> float:
    """‖x − ref‖ / ‖ref‖ over the finite entries of ref (NaN / inf in x: inf)."""
    keep = torch.isfinite(ref)
    x, ref = x.double()[keep], ref[keep]
    if not torch.isfinite(x).all():
        return float("inf")
    return ((x - ref).norm() / ref.norm().clamp_min(1e-300)).item()


def unit_rows(n: int, d: int, dtype: torch.dtype, gen: torch.Generator) -> Tensor:
    """(n, d) random unit rows in ``dtype`` (normalised in float32)."""
    x = torch.randn(n, d, device="cuda", generator=gen)
    return torch.nn.functional.normalize(x, dim=1).to(dtype)


def set_tf32(on: bool) -> None:
    """Set torch's float32 matmul mode (the kernels read it too)."""
    torch.backends.cuda.matmul.allow_tf32 = on


# ----------------------------------------------------------------------------------------------
# 1. correctness


def checks(quick: bool) -> bool:
    """Print a table of relative errors against float64; True when all are within tolerance."""
    print("\n## Correctness (relative error vs float64)\n")
    print("| mode | R x C x D | ids | lse | grad_a | grad_b | grad_scale | tol lse / grads | ok |")
    print("|---|---|---|---|---|---|---|---|---|")
    cases = CHECKS[:6] if quick else CHECKS
    all_ok = True
    gen = torch.Generator(device="cuda").manual_seed(0)
    for r, c, d, name, ids in cases:
        dtype, tf32, tol_lse, tol_grad = MODES[name]
        a, b = unit_rows(r, d, dtype, gen), unit_rows(c, d, dtype, gen)
        scale = 5.0 + 15.0 * torch.rand(r, device="cuda", generator=gen)
        g = torch.randn(r, device="cuda", generator=gen) / r
        rid = cid = None
        if ids != "none":  # the self pair of each row (its index modulo C)
            rid = torch.arange(r, device="cuda") % c
            cid = torch.arange(c, device="cuda")
        try:
            set_tf32(tf32)
            lse = tt.triton_lse_forward(a, b, scale, rid, cid)
            grads = tt.triton_lse_backward(a, b, scale, rid, cid, lse, g)
            torch.cuda.synchronize()
            ref = reference(a, b, scale, rid, cid, g)
            errs = [rel_err(lse, ref[0])] + [rel_err(x, y) for x, y in zip(grads, ref[1:])]
            ok = errs[0] < tol_lse and max(errs[1:]) < tol_grad
            ok = ok and torch.equal(torch.isneginf(lse), torch.isneginf(ref[0]))
            cells = " | ".join(f"{e:.1e}" for e in errs)
        except Exception as err:  # report and go on
            ok, cells = False, f"{type(err).__name__}: {str(err)[:60]} | | |"
        finally:
            set_tf32(False)
        all_ok &= ok
        print(
            f"| {name} | {r}x{c}x{d} | {ids} | {cells} | {tol_lse:.0e} / {tol_grad:.0e} "
            f"| {'yes' if ok else '**NO**'} |",
            flush=True,
        )
    # a fully-excluded row: every column id 7, rows with id 7 lose everything
    for name, dtype, tf32 in (("tf32", torch.float32, True), ("bf16", torch.bfloat16, True)):
        a, b = unit_rows(300, 128, dtype, gen), unit_rows(200, 128, dtype, gen)
        scale = torch.full((300,), 1 / TAU, device="cuda")
        g = torch.randn(300, device="cuda", generator=gen)
        rid = torch.randint(0, 10, (300,), device="cuda", generator=gen)
        cid = torch.full((200,), 7, device="cuda")
        set_tf32(tf32)
        try:
            lse = tt.triton_lse_forward(a, b, scale, rid, cid)
            ga, gb, gs = tt.triton_lse_backward(a, b, scale, rid, cid, lse, g)
        finally:
            set_tf32(False)
        dead = rid == 7
        ok = bool(torch.isneginf(lse[dead]).all() and torch.isfinite(lse[~dead]).all())
        ok = ok and bool((ga[dead] == 0).all() and (gs[dead] == 0).all())
        ok = ok and bool(torch.isfinite(gb.float()).all())
        all_ok &= ok
        print(
            f"| {name} | 300x200x128 | dead rows ({int(dead.sum())}) | -inf where due | zero | "
            f"finite | zero | exact | {'yes' if ok else '**NO**'} |"
        )
    return all_ok


# ----------------------------------------------------------------------------------------------
# 2. speed


def time_steps(
    step: Callable[[], Callable[[], None]], reps: int = 20, warmup: int = 3
) -> tuple[float, float, float]:
    """Median (first-phase ms, total ms) of ``reps`` timed steps (at least 5, fewer when a
    step is slow), and the peak MiB one step allocates beyond what was allocated before.

    ``step()`` runs the first phase (the forward) and returns the second (the backward).
    """
    for _ in range(warmup):
        step()()
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    step()()
    torch.cuda.synchronize()
    peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    first, total = [], []
    t0 = time.time()
    for i in range(reps):
        e0, e1, e2 = (torch.cuda.Event(enable_timing=True) for _ in range(3))
        e0.record()
        second = step()
        e1.record()
        second()
        e2.record()
        e2.synchronize()
        first.append(e0.elapsed_time(e1))
        total.append(e0.elapsed_time(e2))
        if i >= 4 and time.time() - t0 > 2.0:  # slow case: fewer repeats
            break
    return statistics.median(first), statistics.median(total), peak


def triton_step(z: Tensor, scale: Tensor, ids: Tensor, g: Tensor) -> Callable[[], None]:
    """Forward now; the returned closure runs the backward (grad_z = grad_a + grad_b)."""
    lse = tt.triton_lse_forward(z, z, scale, ids, ids)

    def backward() -> None:
        ga, gb, _ = tt.triton_lse_backward(z, z, scale, ids, ids, lse, g)
        ga.add_(gb)

    return backward


def dense_step(z: Tensor, scale: Tensor, g: Tensor) -> Callable[[], None]:
    """Dense PyTorch: float32 logits (R, C), self entries -inf, logsumexp; then autograd."""
    zz = z.detach().requires_grad_(True)
    x = (zz @ zz.T).float() * scale[:, None]
    x.fill_diagonal_(float("-inf"))
    lse = torch.logsumexp(x, 1)

    def backward() -> None:
        torch.autograd.grad((lse * g).sum(), (zz,))

    return backward


def speed_case(mode: str, n: int, d: int, dense: bool) -> list[str]:
    """Table cells of one (mode, N, D) case: Triton first, then the dense reference."""
    r = 2 * n
    dtype = torch.bfloat16 if mode == "bf16" else torch.float32
    gen = torch.Generator(device="cuda").manual_seed(n + d)
    z = unit_rows(r, d, dtype, gen)
    scale = torch.full((r,), 1 / TAU, device="cuda")
    ids = torch.arange(r, device="cuda")
    g = torch.full((r,), 1.0 / r, device="cuda")
    cells = []
    tot = float("nan")
    try:
        fwd, tot, peak = time_steps(lambda: triton_step(z, scale, ids, g))
        tflops = 4 * 2 * r * r * d / (tot * 1e-3) / 1e12
        cells += [f"{fwd:.2f}", f"{tot - fwd:.2f}", f"{tot:.2f}", f"{tflops:.0f}", f"{peak:.0f}"]
    except torch.cuda.OutOfMemoryError:
        cells += ["OOM"] * 5
    except Exception as err:  # report and go on
        cells += [f"ERR {type(err).__name__}: {str(err)[:50]}"] + [""] * 4
    torch.cuda.empty_cache()
    if not dense:
        return [*cells, "-", "-", "-"]
    if time.time() - START > BUDGET_S:
        return [*cells, "skipped (time)", "-", "-"]
    try:
        _, dtot, dpeak = time_steps(lambda: dense_step(z, scale, g))
        cells += [f"{dtot:.2f}", f"{dpeak:.0f}", f"{dtot / tot:.1f}x"]
    except torch.cuda.OutOfMemoryError:
        cells += ["OOM", "OOM", "-"]
    except Exception as err:  # report and go on
        cells += [f"ERR {type(err).__name__}: {str(err)[:50]}", "", ""]
    return cells


def speed(ns: list[int], dims: list[int], dense: bool) -> None:
    """Print the Markdown speed table."""
    print("\n## Speed: NT-Xent-like, R = C = 2N, a = b = z, self excluded, fwd + bwd\n")
    print(
        "| mode | N | R=C | D | triton fwd ms | triton bwd ms | triton total ms | TFLOP/s "
        "| triton peak MiB | dense total ms | dense peak MiB | speed-up |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for mode in ("bf16", "tf32"):
        for d in dims:
            for n in ns:
                set_tf32(mode == "tf32")
                try:
                    cells = speed_case(mode, n, d, dense)
                finally:
                    set_tf32(False)
                    torch.cuda.empty_cache()
                print(f"| {mode} | {n} | {2 * n} | {d} | " + " | ".join(cells) + " |", flush=True)


# ----------------------------------------------------------------------------------------------
# 3. block-size sweep


def sweep_mode(mode: str, n: int, d: int) -> None:
    """Rows of the sweep table for one mode (bf16 or tf32)."""
    dtype = torch.bfloat16 if mode == "bf16" else torch.float32
    r = 2 * n
    gen = torch.Generator(device="cuda").manual_seed(1)
    z = unit_rows(r, d, dtype, gen)
    scale = torch.full((r,), 1 / TAU, device="cuda")
    ids = torch.arange(r, device="cuda")
    g = torch.full((r,), 1.0 / r, device="cuda")
    bd = tt._pad_d(d)
    fwd_cfgs = [
        tt._forward_configs(d, dtype)[0],
        tt._Config(128, 128, bd, bd, True, 8, 3),
        tt._Config(128, 64, bd, bd, True, 4, 3),
        tt._Config(128, 64, 64, 64, False, 8, 3),
        tt._Config(64, 64, bd, bd, True, 4, 3),
    ]
    row_cfgs = [
        tt._backward_configs(d, dtype, "rows")[0],
        tt._Config(128, 32, bd, bd, True, 8, 2),
        tt._Config(64, 64, bd, bd, True, 4, 2),
        tt._Config(64, 64, bd, bd, True, 8, 3),
        tt._Config(64, 64, 64, bd, False, 8, 2),
    ]
    col_cfgs = [tt._backward_configs(d, dtype, "cols")[0]] + [
        replace(c, block_m=c.block_n, block_n=c.block_m) for c in row_cfgs[1:]
    ]
    lse = tt.triton_lse_forward(z, z, scale, ids, ids)
    cases = [("fwd", (c,), functools.partial(tt.triton_lse_forward, configs=[c])) for c in fwd_cfgs]
    for rc, cc in zip(row_cfgs, col_cfgs, strict=True):
        bwd = functools.partial(tt.triton_lse_backward, lse=lse, grad_lse=g, row_configs=[rc])
        cases.append(("bwd", (rc, cc), functools.partial(bwd, col_configs=[cc])))
    for kind, cfgs, fn in cases:
        if any(c.resident and c.block_do < d for c in cfgs):
            continue
        try:
            cell = f"{time_one(functools.partial(fn, z, z, scale, ids, ids)):.2f}"
        except Exception as err:  # report and go on
            cell = f"{type(err).__name__}: {str(err)[:40]}"
        desc = " / ".join(str(astuple(c)) for c in cfgs)
        print(f"| {mode} | {kind} | {desc} | {cell} |", flush=True)


def sweep(n: int = 8192, d: int = 128) -> None:
    """Times of alternative block configurations (bf16 and tf32) at R = C = 2n."""
    print(f"\n## Config sweep at R = C = {2 * n}, D = {d} (ms, median of 20)\n")
    print("| mode | pass | config(s) (BM, BN, BK, BDO, resident, warps, stages) | ms |")
    print("|---|---|---|---|")
    for mode in ("bf16", "tf32"):
        set_tf32(mode == "tf32")
        try:
            sweep_mode(mode, n, d)
        finally:
            set_tf32(False)


def time_one(fn: Callable[[], None], reps: int = 20) -> float:
    """Median ms of ``fn`` over ``reps`` CUDA-event-timed calls after 2 warm-up calls."""
    for _ in range(2):
        fn()
    times = []
    for _ in range(reps):
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record()
        fn()
        e1.record()
        e1.synchronize()
        times.append(e0.elapsed_time(e1))
    return statistics.median(times)


def main() -> int:
    """Run the checks, the speed table and optionally the sweep; exit 1 on a failed check."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one check shape, N <= 8192")
    parser.add_argument("--sweep", action="store_true", help="also time other block configs")
    parser.add_argument("--no-dense", action="store_true", help="skip the dense reference")
    args = parser.parse_args()
    if not tt.available():
        print("needs CUDA and triton (triton_kernels.available() is False)")
        return 2
    import triton

    props = torch.cuda.get_device_properties(0)
    print(
        f"device: {props.name} ({props.total_memory / 2**30:.0f} GiB), torch {torch.__version__}, "
        f"triton {triton.__version__}"
    )
    ok = checks(args.quick)
    ns = [4096, 8192] if args.quick else [4096, 8192, 16384, 32768]
    speed(ns, [128, 256], dense=not args.no_dense)
    if args.sweep:
        sweep()
    print(f"\nchecks: {'all passed' if ok else 'FAILED'}; {time.time() - START:.0f} s in all")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
