"""One Self-E training step against one flow-matching step on the same backbone and batch
(Yu et al., "Self-Evaluation Unlocks Any-Step Text-to-Image Generation", arXiv 2512.22374).

    python benchmarks/selfeval_step.py [--steps 10] [--repeats 5] [--batch-size 64]
        [--device cpu]

Both sides are the ``self_e`` recipe built from the shipped digits3 configurations
(``self_e`` and ``flow_matching``: the same UNet, text encoder, batch, Adam and EMA), the
same seed and the same batch. A step is ``recipe.step`` (prompt dropout, tokenising, the
loss), backward, Adam and the EMA update (``after_step``). Self-E makes three network passes
(x̂0 with gradients, then the conditional evaluator pass on the EMA and the unconditional
one on the online model, both without gradients, on the rows with s < t: about half the
batch at the default ``s_equal_prob = 0.5``); flow matching one. The Self-E recipe is timed
past its τ anneal (τ = 1: every s < t row may land anywhere in [0, t]), where its steps are
dearest; the passes are counted with forward hooks.

The two alternate ``repeats`` times, ``steps`` steps each after a warm-up; the medians of
the per-step times and their ratio are printed as a Markdown table row.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import manyview
from manyview.config import load_config
from manyview.runs import make_dataset, seed_all


def build(name: str, batch_size: int, device: str) -> tuple[object, dict, torch.optim.Optimizer]:
    config = load_config(manyview.create("config", name), [f"run.batch_size={batch_size}"])
    seed_all(0)
    dataset = make_dataset(config["data"])
    recipe = manyview.entry("recipe", "self_e").load()(config, dataset).to(device)
    recipe.steps_done.fill_(config["run"]["steps"] - 1)  # past the anneal: tau = 1
    recipe.train()
    batch = dataset.get_batch(list(range(batch_size)))
    batch["image"] = batch["image"].to(device)
    betas = tuple(config["optimizer"]["betas"])
    opt = torch.optim.Adam(recipe.trainable(), lr=config["optimizer"]["lr"], betas=betas)
    return recipe, batch, opt


def steps(recipe, batch, opt, generator: torch.Generator, n: int, device: str) -> float:
    """Seconds per step over ``n`` steps."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    begin = time.perf_counter()
    for _ in range(n):
        out = recipe.step(batch, generator)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()
        recipe.after_step(int(recipe.steps_done) - 1)  # keeps the step count where it is
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return (time.perf_counter() - begin) / n


def passes(recipe, batch, generator: torch.Generator) -> tuple[int, int]:
    """(online passes, EMA passes) of one step, and the rows they saw, by forward hooks."""
    seen: dict[str, list[int]] = {"online": [], "ema": []}
    hooks = [
        recipe.model.denoiser.register_forward_hook(
            lambda m, a, o: seen["online"].append(a[0].shape[0])
        ),
        recipe.model.ema.denoiser.register_forward_hook(
            lambda m, a, o: seen["ema"].append(a[0].shape[0])
        ),
    ]
    recipe.step(batch, generator)
    for h in hooks:
        h.remove()
    return seen["online"], seen["ema"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    sides = {
        name: build(name, args.batch_size, args.device) for name in ("self_e", "flow_matching")
    }
    gens = {name: torch.Generator(args.device).manual_seed(0) for name in sides}
    for name, (recipe, batch, opt) in sides.items():
        steps(recipe, batch, opt, gens[name], 2, args.device)  # warm-up
    times: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(args.repeats):
        for name, (recipe, batch, opt) in sides.items():
            times[name].append(steps(recipe, batch, opt, gens[name], args.steps, args.device))
    med = {name: 1e3 * statistics.median(v) for name, v in times.items()}
    counts = {name: passes(recipe, batch, gens[name]) for name, (recipe, batch, _) in sides.items()}
    print(
        f"device {args.device}, threads {torch.get_num_threads()}, batch {args.batch_size}, "
        f"{args.repeats} x {args.steps} steps; rows per pass (online, EMA): "
        + "; ".join(f"{n} {c[0]} {c[1]}" for n, c in counts.items())
    )
    print("| flow matching | Self-E | Self-E / flow matching |")
    print("| --- | --- | --- |")
    print(
        f"| {med['flow_matching']:.1f} ms/step | {med['self_e']:.1f} ms/step | "
        f"{med['self_e'] / med['flow_matching']:.2f}x |"
    )


if __name__ == "__main__":
    main()
