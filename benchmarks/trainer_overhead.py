"""Trainer overhead: `manyview`'s Trainer against a hand-written PyTorch loop that does the
same work (same data, views, encoders, projectors, loss, optimizer and schedule).

    python benchmarks/trainer_overhead.py [--steps 200] [--repeats 5]

Both run in this process, alternately, after a warm-up; the table reports the median time
per step (setup, loop and the final save, divided by the steps) and the trainer's overhead.
The trainer writes one checkpoint at the end (weights, optimizer state, fsync) and a log line
every 10 steps; the hand loop reads the loss every 10 steps and saves its weights.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

from manyview.config import validate
from manyview.datasets.synthetic import SyntheticModalities
from manyview.training.optim import build_optimizer, build_scheduler
from manyview.training.sampler import EpochBatchSampler
from manyview.training.trainer import Trainer

CONFIG = {
    "run": {
        "steps": 200,
        "batch_size": 256,
        "log_every": 10,
        "metrics_every": 0,
        "checkpoint_every": 10**9,
        "seed": 0,
    },
    "data": {
        "name": "synthetic",
        "options": {"modalities": {"a": 32, "b": 48}, "num_samples": 8192, "num_classes": 10},
    },
    "optimizer": {"name": "adamw", "lr": 2e-3, "weight_decay": 0.05},
    "schedule": {"kind": "cosine", "warmup_steps": 20},
    "modalities": {
        name: {
            "encoder": "mlp",
            "encoder_options": {"output_dim": 128, "hidden_dim": 256},
            "num_views": 2,
            "views": [{"name": "gaussian_noise", "options": {"std": 0.2}}],
            "projector_dim": 64,
        }
        for name in ("a", "b")
    },
    "losses": [{"name": "mv_dhel", "options": {"temperature": 0.2}}],
}


def run_trainer(config: dict, out: Path) -> float:
    trainer = Trainer(config, out, progress=False)
    start = time.perf_counter()
    trainer.fit()
    return (time.perf_counter() - start) / config["run"]["steps"]


def run_hand_loop(config: dict, out: Path) -> float:
    """The same training written by hand."""
    import manyview
    from manyview.recipes.contrastive import ContrastiveRecipe

    start = time.perf_counter()  # like fit(): setup, loop and the final save
    torch.manual_seed(0)
    dataset = SyntheticModalities(**config["data"]["options"])
    recipe = ContrastiveRecipe(config, dataset)  # same modules; only the loop differs
    model, views = recipe.model, recipe.views
    loss_fn = manyview.create("loss", "mv_dhel", temperature=0.2)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = build_optimizer(config["optimizer"], params)
    scheduler = build_scheduler(config["schedule"], optimizer, config["run"]["steps"])
    sampler = iter(EpochBatchSampler(len(dataset), config["run"]["batch_size"], seed=0))
    g = torch.Generator().manual_seed(1)
    for step in range(config["run"]["steps"]):
        batch = dataset.get_batch(next(sampler))
        zs = []
        for name in ("a", "b"):
            for _ in range(2):
                x = views[name](batch[name], g)
                zs.append(model["projectors"][name](model["encoders"][name](x)))
        loss = loss_fn(torch.stack(zs, dim=1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if (step + 1) % config["run"]["log_every"] == 0:
            float(loss.detach())
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()}, str(out / "w.safetensors")
    )
    return (time.perf_counter() - start) / config["run"]["steps"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    raw = {**CONFIG, "run": {**CONFIG["run"], "steps": args.steps}}
    config = validate(raw, "benchmark")
    trainer_times, hand_times = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats + 1):  # the first round is a warm-up
            hand = run_hand_loop(config, Path(tmp))
            ours = run_trainer(config, Path(tmp) / f"run{i}")
            if i:
                hand_times.append(hand)
                trainer_times.append(ours)
    h, t = statistics.median(hand_times), statistics.median(trainer_times)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.steps} steps x "
        f"{args.repeats} repeats, batch {config['run']['batch_size']}, 4 views"
    )
    print("| loop | ms / step (median) |")
    print("| --- | --- |")
    print(f"| hand-written PyTorch | {h * 1e3:.2f} |")
    print(f"| manyview Trainer | {t * 1e3:.2f} |")
    print(f"| overhead | {100 * (t - h) / h:+.1f} % |")


if __name__ == "__main__":
    main()
