"""GradCache: peak memory and time of one contrastive training step, direct against chunked.

    python benchmarks/gradcache_memory.py [--sizes 512 2048 8192] [--chunk 256]
        [--check-size 512] [--repeats 3] [--json results.json]

The encoder is a small Transformer (2 layers, d_model 128, 4 heads, feed-forward 512, 32
tokens of 64 features, mean-pooled, a linear head to 128): its activations grow with the
batch, as an image or text tower's do. Two views of each instance (Gaussian noise on the
tokens) go through it, and ``infonce`` (``engine="auto"``: tiled at large N, so the loss
itself stays O(N·D)) takes the (N, 2, 128) embeddings.

* **direct**: both views encoded with grad, the loss, ``backward()``;
* **GradCache**: :class:`manyview.training.gradcache.GradCache` with ``chunk_size = --chunk``:
  the same gradient, with the activations of one chunk at a time.

Memory: each (method, N) runs in ``--repeats`` fresh processes; the median of their peak
resident memory above the model and inputs is reported (VmHWM reset through
``/proc/self/clear_refs``), under a 16 GiB address-space limit ("OOM": it needed more). Time:
in those same processes, one step after a warm-up step (seconds, median). Exactness: at ``--check-size`` both methods run in one process, in float64,
and the largest relative difference of the parameter gradients is printed (dropout is off, so
the direct full-batch gradient is the reference; with dropout GradCache reproduces chunk-wise
encoding, see docs/training.md).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from typing import Any

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from loss_speed import MEMORY_LIMIT, _cell_mem, _status_bytes, run_child

TOKENS, FEATURES, WIDTH, OUT = 32, 64, 128, 128


class TokenEncoder(nn.Module):
    """(N, TOKENS, FEATURES) -> (N, OUT): linear stem, 2 Transformer layers, mean pool, head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Linear(FEATURES, WIDTH)
        layer = nn.TransformerEncoderLayer(
            WIDTH, nhead=4, dim_feedforward=4 * WIDTH, dropout=0.0, batch_first=True
        )
        self.blocks = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.head = nn.Linear(WIDTH, OUT)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)).mean(dim=1))


def setup(n: int, dtype: torch.dtype = torch.float32) -> tuple[nn.Module, Any, list[torch.Tensor]]:
    import manyview

    torch.manual_seed(0)
    encoder = TokenEncoder().to(dtype)
    loss = manyview.create("loss", "infonce", temperature=0.1)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, TOKENS, FEATURES, generator=g, dtype=dtype)
    views = [x + 0.1 * torch.randn(x.shape, generator=g, dtype=dtype) for _ in range(2)]
    return encoder, loss, views


def step_fn(method: str, encoder: nn.Module, loss: Any, views: list[torch.Tensor], chunk: int):
    """One forward + backward of ``method`` ("direct" or "gradcache"), gradients in .grad."""
    if method == "direct":

        def direct() -> None:
            z = torch.stack([encoder(v) for v in views], dim=1)
            loss(z).backward()

        return direct
    from manyview.training.gradcache import GradCache

    cache = GradCache(encoder, loss, chunk_size=chunk)
    return lambda: cache.step(views)


def _child(method: str, n: int, chunk: int) -> None:
    """Run in a fresh process: print peak memory above the set-up state and the step time."""
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    encoder, loss, views = setup(n)
    step = step_fn(method, encoder, loss, views, chunk)
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    base = _status_bytes("VmRSS")
    try:
        step()  # warm-up, and the peak
        encoder.zero_grad(set_to_none=False)
        start = time.perf_counter()
        step()
        took = time.perf_counter() - start
    except (RuntimeError, MemoryError) as exc:
        print(json.dumps({"error": "OOM" if "memory" in str(exc).lower() else str(exc)[:80]}))
        return
    print(json.dumps({"bytes": _status_bytes("VmHWM") - base, "seconds": took}))


def measure(method: str, n: int, chunk: int, repeats: int) -> dict[str, Any]:
    """The median peak and step time over ``repeats`` fresh processes (a process's peak RSS
    varies with the allocator's timing: one run in ten may read twice the others)."""
    runs = [_measure_once(method, n, chunk)]
    if "error" not in runs[0]:
        runs += [_measure_once(method, n, chunk) for _ in range(repeats - 1)]
    if any("error" in r for r in runs):
        return next(r for r in runs if "error" in r)
    return {key: statistics.median(r[key] for r in runs) for key in ("bytes", "seconds")}


def _measure_once(method: str, n: int, chunk: int) -> dict[str, Any]:
    return run_child("gradcache_memory", "_child", method, n, chunk)


def gradient_difference(n: int, chunk: int) -> float:
    """Largest relative difference of any parameter gradient, GradCache vs direct, float64."""
    grads = {}
    for method in ("direct", "gradcache"):
        encoder, loss, views = setup(n, torch.float64)
        step_fn(method, encoder, loss, views, chunk)()
        grads[method] = [p.grad.clone() for p in encoder.parameters()]
    return max(
        float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))
        for a, b in zip(grads["gradcache"], grads["direct"], strict=True)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 2048, 8192])
    parser.add_argument("--chunk", type=int, default=256)
    parser.add_argument("--check-size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per cell")
    parser.add_argument("--json", help="write every number to this JSON file")
    args = parser.parse_args()
    where = f"CPU, {torch.get_num_threads()} threads, torch {torch.__version__}"
    diff = gradient_difference(args.check_size, args.chunk)
    print(f"# {where}\n")
    print(
        f"GradCache (chunk {args.chunk}) against direct at N = {args.check_size}, float64: "
        f"largest relative gradient difference {diff:.1e}\n"
    )
    print("| N | direct: peak | direct: step | GradCache: peak | GradCache: step |")
    print("|---:|---:|---:|---:|---:|")
    rows = []
    for n in args.sizes:
        cells = [str(n)]
        for method in ("direct", "gradcache"):
            r = measure(method, n, args.chunk, args.repeats)
            rows.append({"n": n, "method": method, **r})
            if "error" in r:
                cells += [r["error"], "-"]
            else:
                cells += [_cell_mem(r["bytes"]), f"{r['seconds']:.2f} s"]
        print("| " + " | ".join(cells) + " |", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                {"device": where, "chunk": args.chunk, "gradient_difference": diff, "rows": rows},
                fh,
                indent=1,
            )


if __name__ == "__main__":
    main()
