"""A diffusion training step through manyview against a hand-written diffusers loop doing the
same work, and the time the DDAE++ self-conditioning wrapper adds to a step.

    python benchmarks/diffusion_step.py [--steps 60] [--repeats 3] [--batch-size 64]

Work per step, both sides: a batch of digits (8x8, grey, mapped to [-1, 1]), DDPM noise at a
uniform timestep (diffusers ``DDPMScheduler.add_noise``), the ``ddae`` configuration's
diffusers ``UNet2DModel`` predicting the noise, the mean squared error, backward, AdamW,
a warm-up then constant learning rate, and an EMA of every floating-point weight and buffer
(momentum 0.99). manyview runs the ``ddae`` configuration through its ``Trainer`` (the
``diffusion`` recipe, the core ``ema`` teacher; it also checks the loss, logs
``metrics.jsonl`` every 20 steps and writes a checkpoint at the end); the hand loop saves its
weights at the end. Times include setup, the loop and the final save, divided by the steps;
the two alternate ``repeats`` times and the medians are reported.

The self-conditioning overhead is measured twice: whole ``Trainer`` steps of ``ddae`` against
``ddae_selfcond``, and a forward + backward of the bare UNet against the same UNet wrapped by
``SelfConditioned`` (a non-zero MLP), interleaved, with the parameter counts.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

from manyview.config import load_config
from manyview.configs import resolve
from manyview.datasets.digits import Digits
from manyview.training.trainer import Trainer


def config(name: str, steps: int, batch_size: int) -> dict:
    return load_config(
        resolve(name),
        [
            f"run.steps={steps}",
            f"run.batch_size={batch_size}",
            "run.log_every=20",
            f"run.checkpoint_every={steps}",
            "run.metrics_every=0",
        ],
    )


def run_trainer(cfg: dict, out: Path) -> float:
    start = time.perf_counter()
    Trainer(copy.deepcopy(cfg), out, progress=False).fit()
    return (time.perf_counter() - start) / cfg["run"]["steps"]


def run_hand(cfg: dict, out: Path) -> float:
    """The same training written directly against diffusers and torch."""
    from diffusers import DDPMScheduler, UNet2DModel

    start = time.perf_counter()
    torch.manual_seed(cfg["run"]["seed"])
    data = Digits("train", size=8).images
    unet = UNet2DModel(
        sample_size=8,
        in_channels=1,
        out_channels=1,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=8,
        attention_head_dim=8,
    )
    ema = copy.deepcopy(unet).requires_grad_(False).eval()
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear")
    opt = torch.optim.AdamW(unet.parameters(), lr=cfg["optimizer"]["lr"])
    warmup = cfg["schedule"]["warmup_steps"]
    lr = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / max(1, warmup)))
    g = torch.Generator().manual_seed(0)
    batch, steps = cfg["run"]["batch_size"], cfg["run"]["steps"]
    order = torch.randperm(len(data), generator=g)
    pos = 0
    for step in range(steps):
        if pos + batch > len(order):
            order, pos = torch.randperm(len(data), generator=g), 0
        x0 = data[order[pos : pos + batch]] * 2 - 1
        pos += batch
        t = torch.randint(0, 1000, (batch,), generator=g)
        eps = torch.randn(x0.shape, generator=g)
        pred = unet(scheduler.add_noise(x0, eps, t), t).sample
        loss = (pred - eps).square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        lr.step()
        with torch.no_grad():
            for e, s in zip(ema.state_dict().values(), unet.state_dict().values(), strict=True):
                if e.is_floating_point():
                    e.lerp_(s, 0.01)
                else:
                    e.copy_(s)
        if step % 20 == 0:
            float(loss.detach())
    save_file(ema.state_dict(), str(out / "ema.safetensors"))
    return (time.perf_counter() - start) / steps


def wrapper_overhead(batch_size: int, repeats: int) -> dict:
    """Forward + backward of the bare UNet vs the SelfConditioned one (interleaved)."""
    from manyview_diffusion import SelfConditioned, build_network, mlp_overhead

    torch.manual_seed(0)
    kwargs = {
        "in_channels": 1,
        "out_channels": 1,
        "sample_size": 8,
        "block_out_channels": (32, 64),
    }
    bare = build_network("UNet2DModel", kwargs, who="bench", classes=("UNet2DModel",))
    wrapped = SelfConditioned(copy.deepcopy(bare))
    torch.nn.init.normal_(wrapped.mlp[-1].weight, std=0.02)
    x = torch.randn(batch_size, 1, 8, 8)
    t = torch.randint(0, 1000, (batch_size,))

    def once(net: torch.nn.Module) -> float:
        begin = time.perf_counter()
        for _ in range(10):
            net(x, t).sample.square().mean().backward()
        return (time.perf_counter() - begin) / 10

    for net in (bare, wrapped):
        once(net)
    times = {"bare": [], "wrapped": []}
    for _ in range(repeats * 3):
        times["bare"].append(once(bare))
        times["wrapped"].append(once(wrapped))
    added, base, share = mlp_overhead(wrapped)
    return {
        "bare_ms": 1e3 * statistics.median(times["bare"]),
        "wrapped_ms": 1e3 * statistics.median(times["wrapped"]),
        "added_params": added,
        "params": base,
        "share": share,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    plain = config("ddae", args.steps, args.batch_size)
    selfcond = config("ddae_selfcond", args.steps, args.batch_size)
    times: dict[str, list[float]] = {"hand": [], "manyview": [], "selfcond": []}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        run_hand(plain, root)  # warm-up: imports, first allocations
        for r in range(args.repeats):
            times["hand"].append(run_hand(plain, root))
            times["manyview"].append(run_trainer(plain, root / f"mv{r}"))
            times["selfcond"].append(run_trainer(selfcond, root / f"sc{r}"))
    med = {k: 1e3 * statistics.median(v) for k, v in times.items()}
    print(f"threads {torch.get_num_threads()}, batch {args.batch_size}, {args.steps} steps")
    print(
        "| hand-written diffusers | manyview Trainer | overhead | manyview + self-conditioning | self-conditioning overhead |"
    )
    print("| --- | --- | --- | --- | --- |")
    print(
        f"| {med['hand']:.1f} ms/step | {med['manyview']:.1f} ms/step | "
        f"{100 * (med['manyview'] / med['hand'] - 1):+.1f} % | {med['selfcond']:.1f} ms/step | "
        f"{100 * (med['selfcond'] / med['manyview'] - 1):+.1f} % |"
    )
    w = wrapper_overhead(args.batch_size, args.repeats)
    print(
        f"forward+backward: bare {w['bare_ms']:.2f} ms, SelfConditioned {w['wrapped_ms']:.2f} ms "
        f"({100 * (w['wrapped_ms'] / w['bare_ms'] - 1):+.1f} %); MLP {w['added_params']} "
        f"parameters = {100 * w['share']:.2f} % of {w['params']}"
    )


if __name__ == "__main__":
    main()
