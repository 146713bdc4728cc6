"""Markdown tables and PNG plots of a benchmark's rows (matplotlib, Agg backend)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

LOWER_IS_BETTER = {"alignment", "uniformity"}

TITLES = {
    "retrieval_class": "Retrieval, class level (a hit: an item of the query's class)",
    "retrieval_instance": "Retrieval, instance level (a hit: the query's own pair)",
    "zero_shot": "Zero-shot classification through text prompts",
    "linear_probe": "Linear probe (logistic regression, train -> test)",
    "knn": "kNN (cosine, majority vote, train -> test)",
    "alignment": "Alignment between modalities of one instance (lower is better)",
    "uniformity": "Uniformity (lower is better)",
    "effective_rank": "Effective rank of the normalised embeddings",
}


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.3f}"


def markdown(rows: Sequence[Mapping[str, Any]], meta: Mapping[str, Any]) -> str:
    """``bench.md``: one table per task, trained next to random-init."""
    lines = [f"# Benchmark `{meta.get('suite', '')}`", ""]
    for key in ("checkpoint", "split", "modalities", "n_train", "n_test", "num_classes"):
        if meta.get(key) is not None:
            lines.append(f"- {key}: {meta[key]}")
    if meta.get("num_classes"):
        lines.append(f"- chance accuracy / class-level R@1: about {1 / meta['num_classes']:.3f}")
    if not meta.get("zero_shot"):
        lines.append("- zero-shot: skipped (needs a `text` modality and class names)")
    lines.append("")
    tasks: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        tasks.setdefault(row["task"], []).append(row)
    for task, group in tasks.items():
        lines += [f"## {TITLES.get(task, task)}", ""]
        lines.append("| query | target | metric | trained | random-init | change |")
        lines.append("|---|---|---|---:|---:|---:|")
        for r in group:
            delta = (
                r["value"] - r["baseline"]
                if r["baseline"] is not None and r["value"] is not None
                else None
            )
            change = "-" if delta is None else f"{delta:+.3f}"
            lines.append(
                f"| {r['query']} | {r['target'] or '-'} | {r['metric']} | "
                f"{_fmt(r['value'])} | {_fmt(r['baseline'])} | {change} |"
            )
        lines.append("")
    return "\n".join(lines)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _heatmap(rows: Sequence[Mapping[str, Any]], meta: Mapping[str, Any], path: Path) -> bool:
    mods = list(meta["modalities"])
    pick = [r for r in rows if r["task"] == "retrieval_class" and r["metric"] == "R@1"]
    if not pick:
        return False
    plt = _pyplot()
    index = {m: i for i, m in enumerate(mods)}
    has_base = any(r["baseline"] is not None for r in pick)
    panels = [("trained", "value")] + ([("random-init", "baseline")] if has_base else [])
    fig, axes = plt.subplots(
        1, len(panels), figsize=(4.2 * len(panels) + 0.8, 4), squeeze=False, layout="constrained"
    )
    image = None
    for ax, (title, key) in zip(axes[0], panels, strict=True):
        grid = [[math.nan] * len(mods) for _ in mods]
        for r in pick:
            if r[key] is not None:
                grid[index[r["query"]]][index[r["target"]]] = r[key]
        image = ax.imshow(grid, vmin=0.0, vmax=1.0, cmap="viridis")
        for i, row in enumerate(grid):
            for j, v in enumerate(row):
                if not math.isnan(v):
                    ax.text(
                        j,
                        i,
                        f"{v:.2f}",
                        ha="center",
                        va="center",
                        color="white" if v < 0.6 else "black",
                    )
        ax.set_xticks(range(len(mods)), mods)
        ax.set_yticks(range(len(mods)), mods)
        ax.set_xlabel("target")
        if ax is axes[0][0]:
            ax.set_ylabel("query")
        ax.set_title(f"class-level R@1, {title}")
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _accuracy_bars(rows: Sequence[Mapping[str, Any]], path: Path) -> bool:
    pick = [r for r in rows if r["task"] in ("linear_probe", "knn", "zero_shot")]
    if not pick:
        return False
    plt = _pyplot()
    labels = [f"{r['task'].replace('_', ' ')}\n{r['query']}" for r in pick]
    x = list(range(len(pick)))
    width = 0.4
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(pick) + 1.5), 4))
    ax.bar([i - width / 2 for i in x], [r["value"] for r in pick], width, label="trained")
    base = [r["baseline"] if r["baseline"] is not None else 0.0 for r in pick]
    if any(r["baseline"] is not None for r in pick):
        ax.bar([i + width / 2 for i in x], base, width, label="random-init", color="0.65")
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylim(0, 1.18)
    ax.set_ylabel("test accuracy")
    ax.set_title("probe, kNN and zero-shot accuracy")
    ax.legend(loc="upper right", ncol=2, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _training_curves(run_dir: Path, path: Path) -> bool:
    log = run_dir / "metrics.jsonl"
    if not log.is_file():
        return False
    steps, losses = [], []
    for line in log.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec.get("step"), int | float) and isinstance(rec.get("loss"), int | float):
            steps.append(rec["step"])
            losses.append(rec["loss"])
    if not steps:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(steps, losses)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title("training loss")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plots(rows: Sequence[Mapping[str, Any]], meta: Mapping[str, Any], out: Path) -> list[str]:
    """Write the PNG plots that the rows allow; return their paths."""
    out = Path(out)
    written = []
    if _heatmap(rows, meta, out / "retrieval_r1.png"):
        written.append(str(out / "retrieval_r1.png"))
    if _accuracy_bars(rows, out / "accuracy.png"):
        written.append(str(out / "accuracy.png"))
    if meta.get("run_dir") and _training_curves(Path(meta["run_dir"]), out / "training.png"):
        written.append(str(out / "training.png"))
    return written
