"""Research fidelity of the multi-view objectives on ``digits3``: do the directions of
Koromilas et al. 2025 (docs/losses.md, "mv_infonce" and "mv_dhel and dhel") hold at this small
scale?

    python benchmarks/fidelity_multiview.py [--seeds 0 1 2] [--budgets 30 60 120]
        [--settings image2 image3 image4 trimodal] [--losses infonce pwe mv_infonce mv_dhel]
        [--out runs/fidelity] [--json results.json]

Settings:

* ``imageM`` (M = 2, 3, 4): digit images only, M augmented views of each image (random
  resized crop, scale 0.3-1, and brightness and contrast jitter of 0.4) in one loss call; scored by
  the image tower's linear probe, kNN accuracy and effective rank on the test split.
* ``trimodal``: image + speech + text (one view each, M = 3), the demo's encoders; scored
  by class-level R@1 averaged over the six ordered modality pairs (test speech from unseen
  voices), the linear probe averaged over the three modalities, and the effective rank.

``infonce`` is a two-view loss, so it runs only where M = 2. Every run has the same batch
(128), optimiser (AdamW, lr 2e-3), temperature (0.2) and a constant learning rate after 30
warm-up steps, so the checkpoint at each budget is a snapshot of one run, not the end of a
shortened schedule. Budgets are in steps (equal work per loss for a given setting, whatever
else runs on the machine); the wall-clock seconds of training (including building the run:
data, models, first checkpoint) are reported next to them. The tri-modal task saturates fast
here (class R@1 0.99 after 180 steps with a constant learning rate), so the default budgets
are 30, 60 and 120 steps (about 10, 20 and 40 s of tri-modal training on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from manyview.benchmarks import crossmodal
from manyview.config import load_config, validate
from manyview.configs import resolve
from manyview.training.trainer import Trainer

LOSSES = ("infonce", "pwe", "mv_infonce", "mv_dhel")
SETTINGS = ("image2", "image3", "image4", "trimodal")
IMAGE_VIEWS = [
    {"name": "random_resized_crop", "options": {"scale": [0.3, 1.0]}},
    {"name": "color_jitter", "options": {"brightness": 0.4, "contrast": 0.4}},
]


def make_config(setting: str, loss: str, seed: int, steps: int) -> dict[str, Any]:
    """The run's validated configuration (the demo's, with the setting's modalities)."""
    base = load_config(resolve("digits3-mv_infonce"))
    raw = {
        "run": {
            **base["run"],
            "seed": seed,
            "steps": steps,
            "log_every": 50,
            "metrics_every": 0,
            "checkpoint_every": 10**9,
            "keep_checkpoints": 10,
        },
        "data": base["data"],
        "optimizer": base["optimizer"],
        "schedule": {"kind": "constant", "warmup_steps": 30},
        "losses": [{"name": loss, "options": {"temperature": 0.2}}],
    }
    if setting == "trimodal":
        raw["modalities"] = base["modalities"]
    elif setting.startswith("image"):
        image = dict(base["modalities"]["image"])
        image.update(num_views=int(setting[len("image") :]), views=IMAGE_VIEWS)
        raw["modalities"] = {"image": image}
    else:
        raise SystemExit(f"unknown setting {setting!r}; choose from {', '.join(SETTINGS)}")
    return validate(raw, f"fidelity {setting}/{loss}")


def views_of(setting: str) -> int:
    return 3 if setting == "trimodal" else int(setting[len("image") :])


def summarise(rows: list[dict[str, Any]], modalities: list[str]) -> dict[str, float]:
    """The run's headline scores from the crossmodal suite's rows."""

    def mean(task: str, metric: str, cross: bool) -> float | None:
        vals = [
            r["value"]
            for r in rows
            if r["task"] == task
            and r["metric"] == metric
            and (r["target"] is not None) == cross
            and r["query"] in modalities
        ]
        return statistics.fmean(vals) if vals else None

    out = {
        "probe": mean("linear_probe", "accuracy", False),
        "knn": mean("knn", "accuracy@10", False),
        "erank": mean("effective_rank", "effective_rank", False),
    }
    if len(modalities) > 1:
        out["r1"] = mean("retrieval_class", "R@1", True)
    return out


def one_run(
    setting: str, loss: str, seed: int, budgets: list[int], root: Path
) -> list[dict[str, Any]]:
    config = make_config(setting, loss, seed, max(budgets))
    out = root / f"{setting}-{loss}-s{seed}"
    modalities = list(config["modalities"])
    results, elapsed, resume = [], 0.0, False
    for budget in sorted(budgets):
        trainer = Trainer(config, out, resume=resume, progress=False)
        start = time.perf_counter()
        trainer.fit(until=budget)
        elapsed += time.perf_counter() - start
        resume = True
        step_dir = out / "checkpoints" / f"step-{budget}"
        bench = crossmodal.run(
            step_dir, modalities=modalities, baseline="random" if seed == 0 else None
        )
        scores = summarise(bench["rows"], modalities)
        base = None
        if seed == 0:
            base = summarise(
                [{**r, "value": r["baseline"]} for r in bench["rows"] if r["baseline"] is not None],
                modalities,
            )
        results.append(
            {
                "setting": setting,
                "loss": loss,
                "seed": seed,
                "steps": budget,
                "train_seconds": round(elapsed, 2),
                **scores,
                "random_init": base,
            }
        )
        print(json.dumps(results[-1]), flush=True)
    return results


def table(results: list[dict[str, Any]], seconds: bool = True) -> str:
    """Markdown: mean ± standard deviation over seeds, per setting, loss and budget (with
    the mean wall-clock seconds of training when ``seconds``)."""
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["setting"], r["loss"], r["steps"]), []).append(r)

    def cell(rs: list[dict[str, Any]], key: str, digits: int = 3) -> str:
        vals = [r[key] for r in rs if r.get(key) is not None]
        if not vals:
            return "-"
        sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
        return f"{statistics.fmean(vals):.{digits}f} ± {sd:.{digits}f}"

    lines = [
        "| setting | M | loss | steps | "
        + ("train s | " if seconds else "")
        + "linear probe | kNN@10 | class R@1 (x-modal) | effective rank |",
        "|---|---:|---|---:|" + ("---:|" if seconds else "") + "---:|---:|---:|---:|",
    ]
    order = {name: i for i, name in enumerate(LOSSES)}
    for setting, loss, steps in sorted(
        groups, key=lambda k: (SETTINGS.index(k[0]), k[2], order.get(k[1], 99))
    ):
        rs = groups[(setting, loss, steps)]
        secs = statistics.fmean(r["train_seconds"] for r in rs)
        lines.append(
            f"| {setting} | {views_of(setting)} | {loss} | {steps} | "
            + (f"{secs:.0f} | " if seconds else "")
            + f"{cell(rs, 'probe')} | {cell(rs, 'knn')} | {cell(rs, 'r1')} | "
            f"{cell(rs, 'erank', 1)} |"
        )
    bases = {}
    for r in results:
        if r.get("random_init"):
            bases.setdefault(r["setting"], r["random_init"])
    if bases:
        lines += ["", "Random-init towers (seed 0), for reference:", ""]
        lines += ["| setting | linear probe | kNN@10 | class R@1 | effective rank |"]
        lines += ["|---|---:|---:|---:|---:|"]
        for setting, b in sorted(bases.items(), key=lambda kv: SETTINGS.index(kv[0])):
            r1 = "-" if b.get("r1") is None else f"{b['r1']:.3f}"
            lines.append(
                f"| {setting} | {b['probe']:.3f} | {b['knn']:.3f} | {r1} | {b['erank']:.1f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--budgets", type=int, nargs="+", default=[30, 60, 120])
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=SETTINGS)
    parser.add_argument("--losses", nargs="+", default=list(LOSSES), choices=LOSSES)
    parser.add_argument("--out", help="keep the runs here (default: a temporary directory)")
    parser.add_argument("--json", help="also write every result to this JSON file")
    parser.add_argument(
        "--table-from", help="print the table of a JSON file written by --json and exit"
    )
    parser.add_argument(
        "--no-seconds", action="store_true", help="leave the wall-clock column out of the table"
    )
    args = parser.parse_args()
    if args.table_from:
        print(table(json.loads(Path(args.table_from).read_text()), not args.no_seconds))
        return
    results: list[dict[str, Any]] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.out) if args.out else Path(tmp)
        for setting in args.settings:
            for loss in args.losses:
                if loss == "infonce" and views_of(setting) != 2:
                    continue  # a two-view loss
                for seed in args.seeds:
                    results += one_run(setting, loss, seed, args.budgets, root)
                    if args.json:
                        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    print(
        f"\ntorch {torch.__version__}, {torch.get_num_threads()} threads, seeds {args.seeds}, "
        f"total {time.perf_counter() - start:.0f} s\n"
    )
    print(table(results, not args.no_seconds))


if __name__ == "__main__":
    main()
