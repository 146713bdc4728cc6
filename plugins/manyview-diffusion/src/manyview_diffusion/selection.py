"""Choosing DDAE++'s bottleneck (the self-conditioning source) by the training loss of
short runs: the layer is "chosen by the training loss of short parallel runs" (Xiang et
al., arXiv 2505.10999, as its reviews describe it; no code is public).

:func:`select_bottleneck` trains the same ``diffusion`` configuration once per candidate
block and seed for a few steps with self-conditioning from that block, and picks the block
whose diffusion loss, averaged over the last ``tail`` of the steps and the seeds, is lowest.
The runs go through manyview's :class:`~manyview.training.trainer.Trainer`, as ``manyview
train`` would run them.
"""

from __future__ import annotations

import copy
import json
import math
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from manyview.config import ConfigError

__all__ = ["candidate_blocks", "select_bottleneck"]


def candidate_blocks(config: Mapping[str, Any]) -> list[str]:
    """The blocks self-conditioning can start from for this configuration's network: every
    top-level UNet block with a block after it (down blocks, the mid block, all but the
    last up block), or every DiT block but the last."""
    from manyview_diffusion.recipes.diffusion import DiffusionRecipe

    recipe = _recipe(config, DiffusionRecipe)
    base = recipe.model.base
    if hasattr(base, "up_blocks"):
        names = [f"down_blocks.{i}" for i in range(len(base.down_blocks))]
        names += ["mid_block"] * (getattr(base, "mid_block", None) is not None)
        return names + [f"up_blocks.{i}" for i in range(len(base.up_blocks) - 1)]
    return [f"transformer_blocks.{i}" for i in range(len(base.transformer_blocks) - 1)]


def _recipe(config: Mapping[str, Any], cls: type) -> Any:
    from manyview.runs import make_dataset, seed_all

    seed_all(int(config["run"]["seed"]))
    return cls(copy.deepcopy(dict(config)), make_dataset(config["data"]))


def _with(config: Mapping[str, Any], block: str, steps: int, seed: int) -> dict[str, Any]:
    out = copy.deepcopy(dict(config))
    options = out.setdefault("recipe_options", {})
    options["self_condition"] = True
    options["self_condition_options"] = {
        **dict(options.get("self_condition_options") or {}),
        "source": block,
    }
    out["run"] = {
        **out["run"],
        "steps": steps,
        "seed": seed,
        "log_every": 1,
        "checkpoint_every": steps,
        "metrics_every": 0,
    }
    return out


def _tail_loss(run_dir: Path, key: str, tail: float) -> float:
    values = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if key in record:
            values.append(float(record[key]))
    if not values:
        raise ConfigError(f"select_bottleneck: the run logged no {key!r}")
    last = values[-max(1, math.ceil(tail * len(values))) :]
    return sum(last) / len(last)


def select_bottleneck(
    config: Mapping[str, Any],
    candidates: Sequence[str] | None = None,
    *,
    steps: int = 100,
    seeds: Sequence[int] = (0,),
    tail: float = 0.25,
    out: str | Path | None = None,
) -> dict[str, Any]:
    """Train ``config`` (a validated ``diffusion`` configuration) self-conditioned from
    each candidate block for ``steps`` steps per seed; return ``{"best": block, "losses":
    {block: mean tail loss}, "per_seed": {block: [loss per seed]}, "steps": steps}``.

    Args:
        candidates: blocks to try (default :func:`candidate_blocks`).
        tail: the share of the last logged steps whose diffusion loss is averaged.
        out: keep each run in ``out/<block>-seed<k>`` (default: a temporary folder).

    Raises:
        ConfigError: not a ``diffusion`` configuration, a candidate that is not a block of
            the network, or bad ``steps``/``seeds``/``tail``.
    """
    from manyview.options import check_int
    from manyview.training.trainer import Trainer

    if config.get("run", {}).get("recipe") != "diffusion":
        raise ConfigError(
            "select_bottleneck: needs a configuration of the 'diffusion' recipe, got recipe "
            f"{config.get('run', {}).get('recipe')!r}"
        )
    try:
        steps = check_int(steps, "steps", "select_bottleneck")
        seeds = [check_int(s, "seed", "select_bottleneck", least=0) for s in seeds]
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if not seeds:
        raise ConfigError("select_bottleneck: give at least one seed")
    if not 0.0 < float(tail) <= 1.0:
        raise ConfigError(f"select_bottleneck: tail must lie in (0, 1], got {tail}")
    valid = candidate_blocks(config)
    blocks = list(candidates or valid)
    for block in blocks:
        if block not in valid:
            from manyview import did_you_mean

            raise ConfigError(
                f"select_bottleneck: {block!r} is not a block self-conditioning can start "
                f"from{did_you_mean(str(block), valid) or ''}; candidates: {', '.join(valid)}"
            )
    objective = config.get("recipe_options", {}).get("objective", "ddpm")
    key = f"loss/{objective}"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(out) if out is not None else Path(tmp)
        per_seed: dict[str, list[float]] = {}
        for block in blocks:
            for seed in seeds:
                run_dir = root / f"{block}-seed{seed}"
                Trainer(_with(config, block, steps, seed), run_dir, progress=False).fit()
                per_seed.setdefault(block, []).append(_tail_loss(run_dir, key, float(tail)))
    losses = {b: sum(v) / len(v) for b, v in per_seed.items()}
    best = min(losses, key=losses.__getitem__)
    return {"best": best, "losses": losses, "per_seed": per_seed, "steps": steps}
