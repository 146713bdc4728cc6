"""Research fidelity of manyview-diffusion on scikit-learn's digits (8x8): do the directions of
DDAE (Xiang et al., ICCV 2023), DDAE++ self-conditioning (Xiang et al., arXiv 2505.10999) and
REPA (Yu et al., ICLR 2025) hold at this small scale?

    python benchmarks/fidelity_diffusion.py [--seeds 0 1 2] [--steps 400]
        [--configs ddae ddae_selfcond ddae_selfcond_moco repa] [--out runs/fidelity]
        [--json results.json]

Every configuration trains for the same number of steps (batch 64, AdamW 1e-3, EMA 0.99,
the shipped digits configurations with only ``run.seed`` and ``run.steps`` changed), then:

* ``diffusion_probe`` on the EMA network: the linear probe and kNN at the grid cell chosen
  on a validation part of the train split, fitted on 10 labelled train images per class
  (the full 10-class probe of digits saturates) and on the whole train split, next to the
  same network at its initial weights;
* ``generation``: the Fréchet distance between 359 samples (DDIM, 10 and 50 steps) and the
  359 real test digits, in the feature space of the reference classifier (lower is
  better; the real train digits against the test digits give the floor).

The table reports the mean and the standard deviation over the seeds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from manyview.benchmarks import generation
from manyview.config import load_config
from manyview.configs import resolve
from manyview.runs import load_run
from manyview.training.trainer import Trainer
from manyview_diffusion.benchmarks import diffusion_probe

CONFIGS = ("ddae", "ddae_selfcond", "ddae_selfcond_moco", "repa")


def _row(rows: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    found = [r for r in rows if all(r.get(k) == v for k, v in match.items())]
    if len(found) != 1:
        raise KeyError(f"{len(found)} rows match {match}")
    return found[0]


def one(config: str, seed: int, steps: int, root: Path) -> dict[str, float]:
    out = root / f"{config}-seed{seed}"
    start = time.perf_counter()
    if not (out / "checkpoints" / "last").exists():
        cfg = load_config(
            resolve(config),
            [f"run.seed={seed}", f"run.steps={steps}", f"run.checkpoint_every={steps}"],
        )
        Trainer(cfg, out, progress=False).fit()
    train_s = time.perf_counter() - start
    run = load_run(out)
    result: dict[str, float] = {"train_s": train_s}
    for shots, tag in ((10, "10shot"), (None, "full")):
        probe = diffusion_probe.run(run, shots=shots, seed=seed)
        lp = _row(probe["rows"], task="linear_probe")
        knn = _row(probe["rows"], task="knn")
        result[f"probe_{tag}"], result[f"probe_{tag}_init"] = lp["value"], lp["baseline"]
        result[f"knn_{tag}"], result[f"knn_{tag}_init"] = knn["value"], knn["baseline"]
    gen = generation.run(run, steps=[10, 50], seed=seed, baseline=False, out=out / "generation")
    for k in (10, 50):
        result[f"fd_{k}"] = _row(gen["rows"], task="frechet_distance", steps=k)["value"]
    result["fd_floor"] = _row(gen["rows"], task="frechet_distance", steps=None)["value"]
    return result


def _fmt(values: list[float], digits: int = 3) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS))
    parser.add_argument("--out", default="runs/fidelity-diffusion")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    root = Path(args.out)
    results: dict[str, list[dict[str, float]]] = {}
    for config in args.configs:
        for seed in args.seeds:
            results.setdefault(config, []).append(one(config, seed, args.steps, root))
            print(config, seed, json.dumps(results[config][-1]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    cols = [
        ("probe_10shot", "10-shot probe"),
        ("probe_10shot_init", "10-shot probe, init"),
        ("knn_10shot", "10-shot kNN"),
        ("probe_full", "full probe"),
        ("probe_full_init", "full probe, init"),
        ("fd_10", "FD, 10 steps"),
        ("fd_50", "FD, 50 steps"),
    ]
    print(f"{args.steps} steps, seeds {args.seeds}")
    print("| config | " + " | ".join(c[1] for c in cols) + " | train s |")
    print("| --- |" + " ---: |" * (len(cols) + 1))
    for config, runs in results.items():
        cells = [_fmt([r[key] for r in runs], 2 if key.startswith("fd") else 3) for key, _ in cols]
        train = _fmt([r["train_s"] for r in runs], 0)
        print(f"| `{config}` | " + " | ".join(cells) + f" | {train} |")
    floor = [r["fd_floor"] for runs in results.values() for r in runs]
    print(f"FD floor (real train vs test digits): {statistics.mean(floor):.2f}")


if __name__ == "__main__":
    main()
