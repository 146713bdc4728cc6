"""Markdown tables and PNG plots of a benchmark's rows (matplotlib, Agg backend)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

TITLES = {
    "retrieval_class": "Retrieval, class level (a hit: an item of the query's class)",
    "retrieval_instance": "Retrieval, instance level (a hit: the query's own pair)",
    "zero_shot": "Zero-shot classification through text prompts",
    "linear_probe": "Linear probe (logistic regression, train -> test)",
    "knn": "kNN (cosine, majority vote, train -> test)",
    "alignment": "Alignment between modalities of one instance (lower is better)",
    "uniformity": "Uniformity (lower is better)",
    "effective_rank": "Effective rank of the normalised embeddings",
    "frechet_distance": "Fréchet distance to the real images, reference-classifier features "
    "(lower is better)",
    "classifier_accuracy": "Reference classifier's accuracy at the conditioning class "
    "(higher is better)",
}


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.3f}"


def markdown(rows: Sequence[Mapping[str, Any]], meta: Mapping[str, Any]) -> str:
    """``bench.md``: one table per task, trained next to random-init."""
    lines = [f"# Benchmark `{meta.get('suite', '')}`", ""]
    keys = ("checkpoint", "split", "modalities", "n_train", "n_test", "num_samples", "num_classes")
    for key in keys:
        if meta.get(key) is not None:
            lines.append(f"- {key}: {meta[key]}")
    if meta.get("num_classes"):
        lines.append(f"- chance accuracy / class-level R@1: about {1 / meta['num_classes']:.3f}")
    if "zero_shot" in meta and not meta["zero_shot"]:
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


MARKERS = ("o", "^", "s", "D", "v", "P", "X", "*")


def _per_class(labels: Any, per_class: int) -> list[int]:
    """Up to ``per_class`` indices of each class (the first ones, in order), sorted by class."""
    chosen: dict[int, list[int]] = {}
    for i, y in enumerate(labels.tolist()):
        bucket = chosen.setdefault(int(y), [])
        if len(bucket) < per_class:
            bucket.append(i)
    return [i for y in sorted(chosen) for i in chosen[y]]


def _class_colours(plt: Any, num_classes: int) -> Any:
    cmap = plt.get_cmap("tab10" if num_classes <= 10 else "tab20" if num_classes <= 20 else "turbo")
    return [
        cmap(c if num_classes <= 20 else c / max(1, num_classes - 1)) for c in range(num_classes)
    ]


def _sample(
    embeddings: Mapping[str, Mapping[str, Any]],
    meta: Mapping[str, Any],
    total: int,
    min_items: int,
    cap: int | None = None,
) -> tuple[list[tuple[str, dict[str, Any]]], list[str], Any, int, list[int]] | None:
    """``(panels, modalities, labels, num_classes, picked indices)`` for the embedding plots:
    about ``total`` test items (the same number of each class, at most ``cap``), with each panel's embeddings L2-normalised and stacked modality after modality as
    ``panel["z"]``; ``None`` when there is nothing to show (no embeddings, fewer than
    ``min_items`` points, or modalities that do not share one space)."""
    import torch
    import torch.nn.functional as F

    panels = [(name, dict(e)) for name, e in embeddings.items() if e.get("test")]
    if not panels:
        return None
    mods = list(meta["modalities"])
    labels = panels[0][1]["labels"]
    num_classes = int(labels.max()) + 1 if len(labels) else 0
    pick = _per_class(labels, max(1, min(cap or total, total // max(1, num_classes))))
    dims = {e["test"][m].shape[1] for _, e in panels for m in mods}
    if len(pick) * len(mods) < min_items or len(dims) != 1:
        return None
    for _, e in panels:
        e["z"] = torch.cat([F.normalize(e["test"][m][pick].float(), dim=-1) for m in mods])
    return panels, mods, labels, num_classes, pick


def _similarity_heatmap(
    embeddings: Mapping[str, Mapping[str, Any]], meta: Mapping[str, Any], path: Path
) -> bool:
    """Cosine similarities between every modality's test embeddings (a few per class, sorted
    by class), one block per modality pair: class structure shows as bright diagonal blocks
    inside every cross-modal block once training has aligned the modalities."""
    sample = _sample(embeddings, meta, 240, 2, cap=10)
    if sample is None:
        return False
    panels, mods, _, _, pick = sample
    plt = _pyplot()
    n = len(pick)
    fig, axes = plt.subplots(
        1, len(panels), figsize=(5.2 * len(panels) + 0.8, 5), squeeze=False, layout="constrained"
    )
    image = None
    for ax, (name, e) in zip(axes[0], panels, strict=True):
        image = ax.imshow((e["z"] @ e["z"].T).numpy(), vmin=-1.0, vmax=1.0, cmap="RdBu_r")
        for k in range(1, len(mods)):
            ax.axhline(k * n - 0.5, color="black", lw=1.0)
            ax.axvline(k * n - 0.5, color="black", lw=1.0)
        ticks = [k * n + (n - 1) / 2 for k in range(len(mods))]
        ax.set_xticks(ticks, mods)
        ax.set_yticks(ticks, mods, rotation=90, va="center")
        ax.set_title(f"cosine similarity, {name}\n({n} test items per modality, sorted by class)")
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _embedding_map(
    embeddings: Mapping[str, Mapping[str, Any]], meta: Mapping[str, Any], path: Path
) -> bool:
    """A 2-D t-SNE map (scikit-learn) of the test embeddings of every modality together:
    colour = class, marker = modality."""
    sample = _sample(embeddings, meta, 300, 8)
    if sample is None:
        return False
    panels, mods, labels, num_classes, pick = sample
    from sklearn.manifold import TSNE

    plt = _pyplot()
    colours = _class_colours(plt, num_classes)
    y = labels[pick].tolist()
    fig, axes = plt.subplots(
        1, len(panels), figsize=(5.5 * len(panels) + 1.6, 5), squeeze=False, layout="constrained"
    )
    for ax, (name, e) in zip(axes[0], panels, strict=True):
        z = e["z"].numpy()
        perplexity = float(min(30.0, (len(z) - 1) / 3))
        xy = TSNE(2, perplexity=perplexity, init="pca", random_state=0).fit_transform(z)
        for k in range(len(mods)):
            part = xy[k * len(pick) : (k + 1) * len(pick)]
            ax.scatter(
                part[:, 0],
                part[:, 1],
                c=[colours[c] for c in y],
                marker=MARKERS[k % len(MARKERS)],
                s=14,
                alpha=0.75,
                linewidths=0,
            )
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"t-SNE of the test embeddings, {name}")
    names = meta.get("class_names") or [str(c) for c in range(num_classes)]
    handles = [
        plt.Line2D([], [], ls="", marker=MARKERS[k % len(MARKERS)], color="0.3", label=m)
        for k, m in enumerate(mods)
    ]
    handles += [
        plt.Line2D([], [], ls="", marker="o", color=colours[c], label=str(names[c]))
        for c in range(num_classes)
        if num_classes <= 20
    ]
    fig.legend(handles=handles, loc="outside right center", fontsize=8, frameon=False)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plots(
    rows: Sequence[Mapping[str, Any]],
    meta: Mapping[str, Any],
    out: Path,
    *,
    embeddings: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[str]:
    """Write the PNG plots that the rows (and, if given, the test embeddings of the trained
    and random-init models) allow; return their paths."""
    out = Path(out)
    written = []
    if embeddings and _similarity_heatmap(embeddings, meta, out / "similarity.png"):
        written.append(str(out / "similarity.png"))
    if embeddings and _embedding_map(embeddings, meta, out / "embedding_map.png"):
        written.append(str(out / "embedding_map.png"))
    if _heatmap(rows, meta, out / "retrieval_r1.png"):
        written.append(str(out / "retrieval_r1.png"))
    if _accuracy_bars(rows, out / "accuracy.png"):
        written.append(str(out / "accuracy.png"))
    if meta.get("run_dir") and _training_curves(Path(meta["run_dir"]), out / "training.png"):
        written.append(str(out / "training.png"))
    return written
