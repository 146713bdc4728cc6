"""Contrastive loss speed and memory: manyview's dense and tiled engines against the peers.

    python benchmarks/loss_speed.py [--device cpu|cuda] [--sizes 1024 2048 4096]
        [--dims 128 256] [--memory-sizes 16384] [--repeats 3] [--plot docs/img/loss_speed_cpu.png]
        [--json results.json]

For each loss family, forward + backward (the gradient of the embeddings) of

* ``infonce`` (NT-Xent, M = 2): manyview ``engine="tiled"`` and ``engine="dense"``, lightly
  ``NTXentLoss``, pytorch-metric-learning ``NTXentLoss`` (2N embeddings with instance labels);
* ``dcl``: manyview tiled / dense, lightly ``DCLLoss``;
* ``supcon`` (M = 2, 100 classes): manyview tiled / dense, pytorch-metric-learning
  ``SupConLoss``;
* ``clip`` (image-text, N pairs): manyview tiled / dense, open_clip ``ClipLoss``;
* ``mv_infonce`` with M = 4 views: manyview tiled / dense (no peer has an M-view loss).

**Time**: every implementation of a family runs in this process on the same inputs, in
interleaved rounds after a warm-up; the median of ``--repeats`` rounds is reported (CUDA:
``torch.cuda.synchronize`` around each call). **Memory**: on CUDA, ``max_memory_allocated``
above the inputs; on the CPU, each (implementation, N) runs once in a fresh subprocess
whose peak resident memory (VmHWM, reset through ``/proc/self/clear_refs`` once the inputs
exist) above its resident memory at that point is reported, under a 16 GiB
address-space limit so that a peer that needs more fails with "OOM" instead of taking the
machine down. Next to each time: the device's measured matrix-product rate and the fraction
of it that the loss reaches, counting 6·R·C·D flops for a forward + backward over an R x C
similarity matrix (one product forward, two backward; a tiled backward recomputes one more,
which is not counted). The rate (a 4096² float32 product, tf32 on CUDA) is measured at the
start and again at the end; the JSON keeps the larger, so a start disturbed by other work
does not inflate the percentages that ``--tables-from`` prints.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

FAMILIES = ("infonce", "dcl", "supcon", "clip", "mv_infonce")
MEMORY_LIMIT = 16 * 2**30


# ----------------------------------------------------------------------------- cases


def make_inputs(family: str, n: int, d: int, device: str, seed: int = 0) -> dict[str, Any]:
    g = torch.Generator().manual_seed(seed)
    m = 4 if family == "mv_infonce" else 2
    views = torch.randn(n, m, d, generator=g).to(device)
    labels = torch.randint(0, 100, (n,), generator=g).to(device)
    return {"views": views, "labels": labels}


def implementations(
    family: str, only: str | None = None
) -> dict[str, Callable[[dict[str, Any]], Callable[[], Any]]]:
    """``{name: setup(inputs) -> step()}``; ``step`` runs forward + backward once. ``only``:
    import no peer library but that implementation's (open_clip alone takes 11 s)."""

    def wanted(name: str) -> bool:
        return only is None or only == name

    import manyview

    def ours(engine: str) -> Callable[[dict[str, Any]], Callable[[], Any]]:
        def setup(inp: dict[str, Any]) -> Callable[[], Any]:
            options: dict[str, Any] = {"engine": engine}
            if family != "clip":
                options["temperature"] = 0.1
            loss = manyview.create("loss", family, **options).to(inp["views"].device)
            kwargs = {"labels": inp["labels"]} if family == "supcon" else {}

            def step() -> Any:
                x = inp["views"].detach().requires_grad_()
                loss(x, **kwargs).backward()
                return x.grad

            return step

        return setup

    impls: dict[str, Callable[[dict[str, Any]], Callable[[], Any]]] = {
        "manyview tiled": ours("tiled"),
        "manyview dense": ours("dense"),
    }
    if family in ("infonce", "dcl") and wanted(
        "lightly " + ("NTXentLoss" if family == "infonce" else "DCLLoss")
    ):
        try:
            import lightly.loss as lightly_loss
        except ImportError:  # pragma: no cover - a dev dependency
            lightly_loss = None
        if lightly_loss is not None:
            cls = lightly_loss.NTXentLoss if family == "infonce" else lightly_loss.DCLLoss

            def lightly_setup(inp: dict[str, Any], cls: Any = cls) -> Callable[[], Any]:
                peer = cls(temperature=0.1)

                def step() -> Any:
                    x = inp["views"].detach().requires_grad_()
                    peer(x[:, 0], x[:, 1]).backward()
                    return x.grad

                return step

            impls[f"lightly {cls.__name__}"] = lightly_setup
    if family in ("infonce", "supcon") and wanted(
        "PML " + ("NTXentLoss" if family == "infonce" else "SupConLoss")
    ):
        try:
            import pytorch_metric_learning.losses as pml
        except ImportError:  # pragma: no cover
            pml = None
        if pml is not None:
            cls = pml.NTXentLoss if family == "infonce" else pml.SupConLoss

            def pml_setup(inp: dict[str, Any], cls: Any = cls) -> Callable[[], Any]:
                peer = cls(temperature=0.1)
                n = inp["views"].shape[0]
                ids = torch.arange(n, device=inp["views"].device)
                labels = (ids if family == "infonce" else inp["labels"]).repeat(2)

                def step() -> Any:
                    x = inp["views"].detach().requires_grad_()
                    peer(torch.cat([x[:, 0], x[:, 1]]), labels).backward()
                    return x.grad

                return step

            impls[f"PML {cls.__name__}"] = pml_setup
    if family == "clip" and wanted("open_clip ClipLoss"):
        try:
            from open_clip.loss import ClipLoss
        except ImportError:  # pragma: no cover
            ClipLoss = None
        if ClipLoss is not None:

            def clip_setup(inp: dict[str, Any]) -> Callable[[], Any]:
                peer = ClipLoss()
                scale = torch.tensor(1 / 0.07, device=inp["views"].device)

                def step() -> Any:
                    x = inp["views"].detach().requires_grad_()
                    z = F.normalize(x, dim=-1)
                    peer(z[:, 0], z[:, 1], scale).backward()
                    return x.grad

                return step

            impls["open_clip ClipLoss"] = clip_setup
    return impls


def flops(family: str, n: int, d: int) -> float:
    """6·R·C·D for the similarity products of a forward + backward (see the module doc).
    CLIP's two directions are the rows and the columns of one N x N matrix: 6·N²·D."""
    if family == "clip":
        return 6.0 * n * n * d
    m = 4 if family == "mv_infonce" else 2
    return 6.0 * (m * n) ** 2 * d


# ----------------------------------------------------------------------------- measuring


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def matmul_rate(device: str, size: int = 4096) -> float:
    """Measured float32 matrix-product rate in TFLOP/s (tf32 where enabled on CUDA)."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    for _ in range(2):
        a @ b
    _sync(device)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        a @ b
        _sync(device)
        times.append(time.perf_counter() - start)
    return 2 * size**3 / min(times) / 1e12


def time_family(
    family: str,
    n: int,
    d: int,
    device: str,
    repeats: int,
    skip: set[str],
    slow_limit: float = float("inf"),
) -> dict[str, float | str]:
    """Median seconds of forward + backward per implementation (one warm-up call first; an
    implementation whose warm-up took longer than ``slow_limit`` reports that call alone)."""
    inp = make_inputs(family, n, d, device)
    steps: dict[str, Callable[[], Any]] = {}
    out: dict[str, float | str] = {}
    for name, setup in implementations(family).items():
        if name in skip:
            out[name] = "skipped"
            continue
        try:
            steps[name] = setup(inp)
            start = time.perf_counter()
            steps[name]()  # warm-up (and a first check that it fits)
            _sync(device)
            took = time.perf_counter() - start
            if took > slow_limit:  # too slow to repeat: report the one call
                out[name] = took
                steps.pop(name)
        except (RuntimeError, MemoryError) as exc:
            out[name] = "OOM" if "memory" in str(exc).lower() else f"error: {exc}"[:80]
            steps.pop(name, None)
            if device.startswith("cuda"):
                torch.cuda.empty_cache()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            _sync(device)
            start = time.perf_counter()
            step()
            _sync(device)
            times[name].append(time.perf_counter() - start)
    out.update({name: statistics.median(ts) for name, ts in times.items()})
    return out


def _memory_child(family: str, impl: str, n: int, d: int) -> None:
    """Run in a fresh process: print the peak resident memory above the baseline (bytes)."""
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    torch.set_num_threads(max(1, torch.get_num_threads()))
    inp = make_inputs(family, n, d, "cpu")
    step = implementations(family, only=impl)[impl](inp)
    with open("/proc/self/clear_refs", "w") as fh:  # reset the peak (VmHWM) to the current RSS
        fh.write("5")
    base = _status_bytes("VmRSS")
    try:
        step()
    except (RuntimeError, MemoryError) as exc:
        print(json.dumps({"error": "OOM" if "memory" in str(exc).lower() else str(exc)[:80]}))
        return
    print(json.dumps({"bytes": _status_bytes("VmHWM") - base}))


def _status_bytes(key: str) -> int:
    """A memory figure of this process from /proc/self/status (Linux), in bytes."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {key}")


def memory(family: str, impl: str, n: int, d: int, device: str) -> float | str:
    if device.startswith("cuda"):
        inp = make_inputs(family, n, d, device)
        try:
            step = implementations(family)[impl](inp)
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            step()
            torch.cuda.synchronize()
            return float(torch.cuda.max_memory_allocated() - base)
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            return "OOM"
    result = run_child("loss_speed", "_memory_child", family, impl, n, d)
    return result.get("bytes", result.get("error"))


def run_child(module: str, function: str, *args: Any) -> dict[str, Any]:
    """``module.function(*args)`` (a script in this folder) in a fresh Python process; its
    last printed JSON line, or ``{"error": "OOM" | "error: ..."}`` if it printed none (a
    process killed or failing for memory reads "OOM")."""
    here = os.path.dirname(os.path.abspath(__file__))
    call = ", ".join(repr(a) for a in args)
    code = f"import sys; sys.path.insert(0, {here!r}); import {module}; {module}.{function}({call})"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        oom = "memory" in tail.lower() or proc.returncode < 0
        return {"error": "OOM" if oom else f"error: {tail}"[:80]}
    return json.loads(lines[-1])


# ----------------------------------------------------------------------------- report


def _cell_time(v: Any, fl: float, rate: float) -> str:
    if not isinstance(v, float):
        return str(v)
    return f"{v * 1e3:.1f} ms ({100 * fl / v / 1e12 / rate:.0f} %)"


def _cell_mem(v: Any) -> str:
    if not isinstance(v, float | int):
        return str(v)
    return f"{v / 2**20:.0f} MiB" if v < 2**30 else f"{v / 2**30:.2f} GiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096])
    parser.add_argument("--dims", type=int, nargs="+", default=[128])
    parser.add_argument("--memory-sizes", type=int, nargs="+", default=[4096, 16384])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--slow-limit",
        type=float,
        default=30.0,
        help="skip an implementation at larger N once one call took longer than this many seconds",
    )
    parser.add_argument("--plot", help="write a PNG of time and memory against N")
    parser.add_argument("--json", help="write every number to this JSON file")
    parser.add_argument(
        "--plot-from", nargs="+", metavar="JSON", help="only plot earlier --json results"
    )
    parser.add_argument(
        "--tables-from", metavar="JSON", help="only print the tables of an earlier --json run"
    )
    args = parser.parse_args()
    if args.plot_from:
        runs = [json.loads(Path(path).read_text()) for path in args.plot_from]
        results = [r for run in runs for r in run["results"]]
        plot(results, runs[0]["device"], args.plot or "loss_speed.png")
        return
    if args.tables_from:
        print_tables(json.loads(Path(args.tables_from).read_text()))
        return
    device = args.device
    if not device.startswith("cuda"):  # a peer that needs more fails here, not the machine
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    torch.backends.cuda.matmul.allow_tf32 = True
    rate = matmul_rate(device)
    where = (
        torch.cuda.get_device_name()
        if device.startswith("cuda")
        else f"CPU, {torch.get_num_threads()} threads"
    )
    print(f"# {where}, torch {torch.__version__}; matrix products: {rate:.2f} TFLOP/s measured\n")
    results: list[dict[str, Any]] = []
    for family in args.families:
        for d in args.dims:
            slow: set[str] = set()
            print(f"## {family}, D = {d}: forward + backward (% of the matrix-product rate)\n")
            names = list(implementations(family))
            print("| N | " + " | ".join(names) + " |")
            print("|---:|" + "---:|" * len(names))
            for n in args.sizes:
                row = time_family(family, n, d, device, args.repeats, slow, args.slow_limit)
                for name, v in row.items():
                    if isinstance(v, float) and v > args.slow_limit:
                        slow.add(name)
                    results.append(
                        {"family": family, "d": d, "n": n, "impl": name, "kind": "time", "value": v}
                    )
                fl = flops(family, n, d)
                print(
                    f"| {n} | " + " | ".join(_cell_time(row.get(k), fl, rate) for k in names) + " |"
                )
            print()
            print(f"## {family}, D = {d}: peak memory of forward + backward above the inputs\n")
            print("| N | " + " | ".join(names) + " |")
            print("|---:|" + "---:|" * len(names))
            for n in args.memory_sizes:
                cells = []
                for name in names:
                    v = memory(family, name, n, d, device)
                    results.append(
                        {
                            "family": family,
                            "d": d,
                            "n": n,
                            "impl": name,
                            "kind": "memory",
                            "value": v,
                        }
                    )
                    cells.append(_cell_mem(v))
                print(f"| {n} | " + " | ".join(cells) + " |")
            print(flush=True)
    # the rate again: a start disturbed by other work would inflate every percentage
    end_rate = matmul_rate(device)
    if end_rate > 1.1 * rate:
        print(
            f"# the matrix-product rate was {end_rate:.2f} TFLOP/s at the end: the percentages "
            f"above used a disturbed {rate:.2f}; --tables-from the JSON uses the larger"
        )
    rates = {"matmul_tflops_start": rate, "matmul_tflops_end": end_rate}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                {
                    "device": where,
                    "matmul_tflops": max(rate, end_rate),
                    **rates,
                    "results": results,
                },
                fh,
                indent=1,
            )
    if args.plot:
        plot(results, where, args.plot)


def print_tables(run: dict[str, Any]) -> None:
    """The markdown tables of a ``--json`` file (percentages from its recorded rate)."""
    results, rate = run["results"], run["matmul_tflops"]
    print(f"# {run['device']}; matrix products: {rate:.2f} TFLOP/s measured\n")
    for family, d in dict.fromkeys((r["family"], r["d"]) for r in results):
        for kind in ("time", "memory"):
            pick = [r for r in results if (r["family"], r["d"], r["kind"]) == (family, d, kind)]
            if not pick:
                continue
            names = sorted(  # ours first, then the peers in the order they were run
                dict.fromkeys(r["impl"] for r in pick),
                key=lambda name: (not name.startswith("manyview"), name.startswith("PML")),
            )
            what = (
                "forward + backward (% of the matrix-product rate)"
                if kind == "time"
                else "peak memory of forward + backward above the inputs"
            )
            print(f"## {family}, D = {d}: {what}\n")
            print("| N | " + " | ".join(names) + " |")
            print("|---:|" + "---:|" * len(names))
            for n in dict.fromkeys(r["n"] for r in pick):
                row = {r["impl"]: r["value"] for r in pick if r["n"] == n}
                if kind == "time":
                    cells = [_cell_time(row.get(k), flops(family, n, d), rate) for k in names]
                else:
                    cells = [_cell_mem(row.get(k, "-")) for k in names]
                print(f"| {n} | " + " | ".join(cells) + " |")
            print()


def plot(results: list[dict[str, Any]], where: str, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    families = sorted({r["family"] for r in results}, key=FAMILIES.index)
    fig, axes = plt.subplots(2, len(families), figsize=(3.6 * len(families), 6.4), squeeze=False)
    for col, family in enumerate(families):
        for row, kind in enumerate(("time", "memory")):
            ax = axes[row][col]
            pick = [r for r in results if r["family"] == family and r["kind"] == kind]
            d = min(r["d"] for r in pick) if pick else None
            for impl in dict.fromkeys(r["impl"] for r in pick):
                pts = sorted(
                    (r["n"], r["value"])
                    for r in pick
                    if r["impl"] == impl and r["d"] == d and isinstance(r["value"], float | int)
                )
                scale = 1e3 if kind == "time" else 1 / 2**20
                line = None
                if pts:
                    (line,) = ax.plot(
                        [p[0] for p in pts], [p[1] * scale for p in pts], "o-", label=impl
                    )
                ooms = sorted(
                    r["n"]
                    for r in pick
                    if r["impl"] == impl and r["d"] == d and r["value"] == "OOM"
                )
                if kind == "memory" and ooms:  # did not fit: a cross on the limit
                    ax.plot(
                        ooms,
                        [MEMORY_LIMIT * scale] * len(ooms),
                        "x",
                        ms=9,
                        color=line.get_color() if line else None,
                        label=None if line else f"{impl} (OOM)",
                    )
            if kind == "memory":
                ax.axhline(MEMORY_LIMIT / 2**20, ls="--", lw=0.8, color="0.5")
                ax.text(
                    ax.get_xlim()[0],
                    MEMORY_LIMIT / 2**20,
                    " 16 GiB limit (x: OOM)",
                    fontsize=6,
                    va="bottom",
                )
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("N")
            ax.set_ylabel("ms" if kind == "time" else "MiB")
            ax.set_title(f"{family} (D={d}) {kind}", fontsize=9)
            ax.legend(fontsize=6)
    fig.suptitle(f"forward + backward, {where}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
