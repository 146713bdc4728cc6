"""The ``diffusion_probe`` benchmark: DDAE's protocol (Xiang et al., ICCV 2023;
``FutureXiang/ddae``, ``linear.py``) — a linear probe and kNN on frozen features of the EMA
network over a grid of (block, noise level), the trained network next to the same network
at its initial weights.

The run's recipe must read DDAE features: ``feature_grid(images, blocks, level) ->
{block: (N, C)}`` and ``probe_grid() -> (blocks, levels)`` (manyview-diffusion's
``diffusion`` recipe has both). For every cell the probe is fitted on the train split and
scored on ``split``. The reported best cell is chosen on a validation part of the train
split (a seeded ``val_fraction`` of it), not on the test split, and then scored on the test
split with the probe refitted on the whole train split; DDAE reports the best test cell.

``shots`` (e.g. 10) fits every probe on that many labelled train images per class (a
low-shot probe, for datasets where the full probe saturates); kNN uses the same bank.

Python::

    from manyview.runs import load_run
    from manyview_diffusion.benchmarks import diffusion_probe
    result = diffusion_probe.run(load_run("runs/ddae-..."), out="runs/ddae-.../bench")

Command line: ``manyview bench --suite diffusion_probe --checkpoint runs/ddae-...``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from manyview.benchmarks import BenchmarkError
from manyview.benchmarks.scores import knn_accuracy, linear_probe_accuracy

SUITE = "diffusion_probe"

__all__ = ["SUITE", "DDAEFeatures", "example_run", "run"]


@runtime_checkable
class DDAEFeatures(Protocol):
    """What ``diffusion_probe`` reads from a run's recipe (the ``diffusion`` recipe has it):
    ``feature_grid(images, blocks, level) -> {block: (N, C)}`` — the pooled features of
    several blocks from one forward pass at one noise level, of the network the recipe
    evaluates (its EMA) — ``probe_grid() -> (blocks, levels)``, the default grid, and
    ``modalities`` (the first is the images' entry)."""

    modalities: tuple[str, ...]

    def feature_grid(
        self, images: Tensor, blocks: Sequence[str], level: Any
    ) -> dict[str, Tensor]: ...

    def probe_grid(self) -> tuple[list[str], list[Any]]: ...


def example_run(tmp_path: str | Path) -> Any:
    """A tiny ``diffusion`` run (its recipe's example configuration, 2 steps), for the
    benchmark contract tests."""
    from manyview.runs import load_run
    from manyview.testing.recipes import example_config
    from manyview.training.trainer import Trainer

    config = example_config("diffusion", ["run.steps=2", "run.checkpoint_every=2"])
    Trainer(config, Path(tmp_path), progress=False).fit()
    return load_run(tmp_path)


def _images_labels(dataset: Any, modality: str, who: str) -> tuple[Tensor, Tensor]:
    n = len(dataset)
    if n == 0:
        raise BenchmarkError(f"{who}: the dataset is empty")
    fetch = getattr(dataset, "get_batch", None)
    if fetch is not None:
        batch = fetch(list(range(n)))
        images, labels = batch.get(modality), batch.get("label")
    else:
        samples = [dataset[i] for i in range(n)]
        if modality not in samples[0] or "label" not in samples[0]:
            images = labels = None
        else:
            images = torch.stack([s[modality] for s in samples])
            labels = torch.as_tensor([int(s["label"]) for s in samples])
    if images is None or labels is None:
        raise BenchmarkError(f"{who}: the dataset's samples need {modality!r} and 'label'")
    return images, torch.as_tensor(labels).long()


def _embed(
    recipe: Any, images: Tensor, blocks: Sequence[str], level: Any, batch_size: int
) -> dict[str, Tensor]:
    parts: dict[str, list[Tensor]] = {b: [] for b in blocks}
    with torch.no_grad():
        for start in range(0, images.shape[0], batch_size):
            feats = recipe.feature_grid(images[start : start + batch_size], blocks, level)
            for b in blocks:
                parts[b].append(feats[b].float().cpu())
    return {b: torch.cat(v) for b, v in parts.items()}


def _few_shot(labels: Tensor, shots: int | None, seed: int) -> Tensor:
    """Indices of ``shots`` samples per class (all when None), seeded."""
    if shots is None:
        return torch.arange(len(labels))
    g = torch.Generator().manual_seed(seed)
    keep = []
    for c in labels.unique():
        idx = torch.nonzero(labels == c).flatten()
        keep.append(idx[torch.randperm(len(idx), generator=g)[:shots]])
    return torch.cat(keep).sort().values


def _scores(train: Tensor, ytrain: Tensor, test: Tensor, ytest: Tensor, k: int, seed: int):
    probe = linear_probe_accuracy(train, ytrain, test, ytest, seed=seed)
    knn = knn_accuracy(train, ytrain, test, ytest, k=min(k, len(ytrain)))
    return probe, knn


def _grid(
    recipe: Any,
    data: dict[str, tuple[Tensor, Tensor]],
    blocks: Sequence[str],
    levels: Sequence[Any],
    *,
    shots: int | None,
    k: int,
    seed: int,
    val_fraction: float,
    batch_size: int,
) -> dict[str, Any]:
    """Every cell's test scores, the cell chosen on validation, and its test scores."""
    (xtr, ytr), (xte, yte) = data["train"], data["test"]
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(ytr), generator=g)
    n_val = max(1, round(val_fraction * len(ytr)))
    val_idx, fit_idx = perm[:n_val], perm[n_val:]
    fit_idx = fit_idx[_few_shot(ytr[fit_idx], shots, seed)]
    train_idx = _few_shot(ytr, shots, seed)
    cells: dict[tuple[str, Any], dict[str, float]] = {}
    for level in levels:
        ftr = _embed(recipe, xtr, blocks, level, batch_size)
        fte = _embed(recipe, xte, blocks, level, batch_size)
        for block in blocks:
            val_probe, _ = _scores(
                ftr[block][fit_idx], ytr[fit_idx], ftr[block][val_idx], ytr[val_idx], k, seed
            )
            probe, knn = _scores(ftr[block][train_idx], ytr[train_idx], fte[block], yte, k, seed)
            cells[(block, level)] = {"val_probe": val_probe, "linear_probe": probe, "knn": knn}
    best = max(cells, key=lambda c: (cells[c]["val_probe"], -levels.index(c[1])))
    return {"cells": cells, "best": best}


def run(
    run: Any,
    *,
    out: str | Path | None = None,
    split: str = "test",
    blocks: Sequence[str] | None = None,
    levels: Sequence[Any] | None = None,
    shots: int | None = None,
    k: int = 10,
    val_fraction: float = 0.2,
    batch_size: int = 256,
    device: str = "cpu",
    baseline: bool = True,
    seed: int = 0,
) -> dict[str, Any]:
    """DDAE's probe grid on ``run`` (a :class:`manyview.Run`); see the module docstring.

    Args:
        split: the split the probes are scored on (the train split fits them).
        blocks, levels: the grid (default the recipe's ``probe_grid()``).
        shots: labelled train images per class for the probes (default: all).
        k: the kNN's neighbours.
        val_fraction: the share of the train split that chooses the best cell.
        baseline: score the random-init network too (``run.baseline()``).

    Returns:
        ``{"rows", "meta", "files"}``: one row per (cell, probe) — ``task =
        "probe_grid"``, ``query = "<block>@<level>"`` — and the best cell's
        ``linear_probe`` and ``knn`` accuracies, each with the random-init value.
    """
    who = SUITE
    recipe = getattr(run, "recipe", None)
    if not isinstance(recipe, DDAEFeatures):
        raise BenchmarkError(
            f"{who}: the run's recipe ({type(recipe).__name__}) reads no DDAE features "
            "(manyview_diffusion.benchmarks.diffusion_probe.DDAEFeatures: "
            'feature_grid and probe_grid); train it with recipe = "diffusion"'
        )
    if shots is not None and (isinstance(shots, bool) or not isinstance(shots, int) or shots < 1):
        raise BenchmarkError(f"{who}: shots must be a positive int, got {shots!r}")
    if not 0.0 < float(val_fraction) < 1.0:
        raise BenchmarkError(f"{who}: val_fraction must lie in (0, 1), got {val_fraction}")
    default_blocks, default_levels = recipe.probe_grid()
    blocks = list(blocks or default_blocks)
    levels = list(levels or default_levels)
    try:
        modality = recipe.modalities[0]
        data = {
            "train": _images_labels(run.dataset("train"), modality, who),
            "test": _images_labels(run.dataset(split), modality, who),
        }
        run.to(device)
        options = dict(
            shots=shots, k=k, seed=seed, val_fraction=float(val_fraction), batch_size=batch_size
        )
        recipe.feature_grid(data["test"][0][:1].to(device), blocks, levels[0])  # fail fast
        trained = _evaluate(run, data, blocks, levels, device, options)
        base = None
        if baseline:
            base = _evaluate(run.baseline().to(device), data, blocks, levels, device, options)
    except ValueError as exc:
        if isinstance(exc, BenchmarkError):
            raise
        raise BenchmarkError(f"{who}: {str(exc).splitlines()[0]}") from None
    rows = _rows(trained, base)
    meta = {
        "suite": SUITE,
        "checkpoint": str(getattr(run, "checkpoint", "") or ""),
        "split": split,
        "blocks": blocks,
        "levels": levels,
        "shots": shots,
        "n_train": len(data["train"][1]),
        "n_test": len(data["test"][1]),
        "num_classes": int(data["train"][1].max()) + 1,
        "best_cell": list(trained["best"]),
        "best_cell_random_init": None if base is None else list(base["best"]),
        "selection": f"best validation linear-probe accuracy ({val_fraction:.0%} of train)",
    }
    result = {"rows": rows, "meta": meta, "files": []}
    if out is not None:
        result["files"] = _write(result, trained, base, Path(out))
    return result


def _evaluate(run: Any, data, blocks, levels, device: str, options) -> dict[str, Any]:
    recipe = run.recipe
    modes = [(m, m.training) for m in recipe.modules()]
    recipe.eval()
    try:
        moved = {s: (x.to(device), y) for s, (x, y) in data.items()}
        return _grid(recipe, moved, blocks, levels, **options)
    finally:
        for module, mode in modes:
            module.train(mode)


def _row(task: str, query: str, metric: str, value: float, baseline: float | None):
    return {
        "suite": SUITE,
        "task": task,
        "query": query,
        "target": None,
        "metric": metric,
        "value": value,
        "baseline": baseline,
    }


def _rows(trained: dict[str, Any], base: dict[str, Any] | None) -> list[dict[str, Any]]:
    rows = []
    for (block, level), scores in trained["cells"].items():
        for metric in ("linear_probe", "knn"):
            other = None if base is None else base["cells"][(block, level)][metric]
            rows.append(_row("probe_grid", f"{block}@{level}", metric, scores[metric], other))
    best = trained["cells"][trained["best"]]
    base_best = None if base is None else base["cells"][base["best"]]
    for metric in ("linear_probe", "knn"):
        other = None if base_best is None else base_best[metric]
        rows.append(_row(metric, "image", "accuracy", best[metric], other))
    return rows


def _write(result, trained, base, out: Path) -> list[str]:
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(result["rows"], indent=1) + "\n")
    (out / "bench.md").write_text(_markdown(result, trained, base))
    files = [str(out / "bench.json"), str(out / "bench.md")]
    png = out / "probe_grid.png"
    if _heatmap(trained, base, result["meta"], png):
        files.append(str(png))
    return files


def _markdown(result, trained, base) -> str:
    meta = result["meta"]
    blocks, levels = meta["blocks"], meta["levels"]
    shots = "all" if meta["shots"] is None else f"{meta['shots']} per class"
    lines = [
        f"# Benchmark `{SUITE}`",
        "",
        f"- checkpoint: {meta['checkpoint']}",
        f"- split: {meta['split']} ({meta['n_test']} images; probes fitted on {shots} of "
        f"{meta['n_train']} train images)",
        f"- chance accuracy: about {1 / meta['num_classes']:.3f}",
        f"- best cell (trained): {meta['best_cell'][0]} at noise level {meta['best_cell'][1]}, "
        f"chosen by {meta['selection']}",
        "",
        "| probe | trained | random-init | change |",
        "|---|---:|---:|---:|",
    ]
    for row in result["rows"]:
        if row["task"] == "probe_grid":
            continue
        b = row["baseline"]
        change = "-" if b is None else f"{row['value'] - b:+.3f}"
        b_text = "-" if b is None else f"{b:.3f}"
        lines.append(f"| {row['task']} | {row['value']:.3f} | {b_text} | {change} |")
    for name, res in (("trained", trained), ("random-init", base)):
        if res is None:
            continue
        lines += ["", f"## Linear-probe accuracy over the grid ({name})", ""]
        lines.append("| block | " + " | ".join(f"level {lv}" for lv in levels) + " |")
        lines.append("|---|" + "---:|" * len(levels))
        for block in blocks:
            cells = [f"{res['cells'][(block, lv)]['linear_probe']:.3f}" for lv in levels]
            lines.append(f"| {block} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _heatmap(trained, base, meta, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    blocks, levels = meta["blocks"], meta["levels"]
    panels = [("trained", trained)] + ([("random-init", base)] if base is not None else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(3 + 1.2 * len(levels) * len(panels), 3))
    axes = [axes] if len(panels) == 1 else list(axes)
    for ax, (name, res) in zip(axes, panels, strict=True):
        grid = [[res["cells"][(b, lv)]["linear_probe"] for lv in levels] for b in blocks]
        im = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(levels)), [str(lv) for lv in levels])
        ax.set_yticks(range(len(blocks)), blocks)
        ax.set_xlabel("noise level")
        ax.set_title(f"linear probe ({name})")
        for i, row in enumerate(grid):
            for j, v in enumerate(row):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", color="w", fontsize=8)
    fig.colorbar(im, ax=axes)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
