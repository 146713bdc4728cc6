"""Views per second of manyview-vision's batched SimCLR pipeline against torchvision.transforms.v2
applied per sample (the usual SSL data loader), same pipeline, same process, CPU.

    python benchmarks/vision_views.py [--batch 256] [--sizes 32 224] [--repeats 5]

The pipeline is SimCLR's ImageNet augmentation: RandomResizedCrop(scale 0.08-1), horizontal
flip, colour jitter (0.8, 0.8, 0.8, 0.2) with p = 0.8 in random order, grayscale p = 0.2,
Gaussian blur p = 0.5 with a kernel of 10% of the side (3 at 32, 23 at 224) and sigma in
[0.1, 2], output float32 in [0, 1]. Both sides start from the same uint8 batch
(N, 3, S, S); torchvision is also timed on float input, and the faster of its two runs is
the baseline. Runs alternate between the two sides and the table reports medians. Prints a
Markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable

import torch
import torchvision
from torchvision.transforms import v2

from manyview_vision.views import ImageAugment
from manyview_vision.views.blur import auto_kernel_size


def torchvision_pipeline(size: int) -> v2.Compose:
    """SimCLR's augmentation with torchvision.transforms.v2, one image at a time."""
    k = auto_kernel_size(size, size)
    return v2.Compose(
        [
            v2.RandomResizedCrop(size, scale=(0.08, 1.0), antialias=True),
            v2.RandomHorizontalFlip(0.5),
            v2.RandomApply([v2.ColorJitter(0.8, 0.8, 0.8, 0.2)], p=0.8),
            v2.RandomGrayscale(0.2),
            v2.RandomApply([v2.GaussianBlur(k, sigma=(0.1, 2.0))], p=0.5),
            v2.ToDtype(torch.float32, scale=True),
        ]
    )


def seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (
        f"{cpu}, nproc {os.cpu_count()}, torch {torch.__version__} "
        f"({torch.get_num_threads()} thread(s)), torchvision {torchvision.__version__}, "
        f"Python {platform.python_version()}"
    )


def load() -> str:
    try:
        return "/".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def measure(size: int, batch: int, repeats: int, seed: int) -> dict[str, list[float]]:
    """Seconds per batch for each side, runs interleaved (after one warm-up run each)."""
    x = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8)
    xf = x.float() / 255
    ours = ImageAugment()  # SimCLR's pipeline at strength 1: the defaults
    gen = torch.Generator().manual_seed(seed)
    tv = torchvision_pipeline(size)
    sides: dict[str, Callable[[], object]] = {
        "ours": lambda: ours(x, generator=gen),
        "tv_uint8": lambda: torch.stack([tv(img) for img in x]),
        "tv_float": lambda: torch.stack([tv(img) for img in xf]),
    }
    times: dict[str, list[float]] = {k: [] for k in sides}
    for fn in sides.values():
        fn()
    for _ in range(repeats):
        for name, fn in sides.items():
            times[name].append(seconds(fn))
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 224])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per side (median)")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    load_before = load()
    rows = []
    for size in args.sizes:
        times = measure(size, args.batch, args.repeats, args.seed)
        med = {k: statistics.median(v) for k, v in times.items()}
        base = min(("tv_uint8", "tv_float"), key=med.__getitem__)
        ours_rate, base_rate = args.batch / med["ours"], args.batch / med[base]
        rows.append(
            f"| {size}x{size} | {ours_rate:,.0f} | {base_rate:,.0f} "
            f"({'uint8' if base == 'tv_uint8' else 'float'} input) | "
            f"{ours_rate / base_rate:.1f}x |"
        )
        ms = {k: [round(t * 1000) for t in v] for k, v in times.items()}
        print(f"# {size}x{size}, ms per batch: {ms}", file=sys.stderr)
    command = " ".join(["python benchmarks/vision_views.py", *(argv or sys.argv[1:])])
    print(f"Command: `{command}`  ")
    print(f"Machine: {machine()}  ")
    print(
        f"Batch {args.batch}, median of {args.repeats} runs; load average (1/5/15 min) "
        f"before: {load_before}, after: {load()}\n"
    )
    print(
        "| images | manyview-vision `image_augment`, batched (views/s) "
        "| torchvision v2 per sample (views/s) | speed-up |"
    )
    print("| --- | ---: | ---: | ---: |")
    for row in rows:
        print(row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
