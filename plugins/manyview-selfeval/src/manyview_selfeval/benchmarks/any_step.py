"""The ``any_step`` benchmark: how a text-to-image run's samples hold up as the number of
sampling steps K falls, the measure of an any-step generator (Yu et al., "Self-Evaluation
Unlocks Any-Step Text-to-Image Generation", arXiv 2512.22374, which reports quality from
50 down to 1 step).

For each K (default 1, 2, 4, 8, 16, 50), from the prompt of each class (the ``self_e``
recipe's :attr:`class_prompts`: digits3's ``"zero"`` ... ``"nine"``):

- ``classifier_accuracy``: the share of samples the core's reference digit classifier
  (:func:`manyview.benchmarks.generation.reference_classifier`, trained on the run's train
  split) assigns to the class their prompt names: does the image show the digit asked for?
- ``frechet_distance``: the Fréchet distance between Gaussians fitted to the samples' and
  the real test images' features in that classifier's 64-d penultimate layer
  (:func:`~manyview.benchmarks.generation.frechet_distance`; Heusel et al. 2017's FID
  formula with the classifier in place of Inception-v3).

``compare`` names another run (e.g. the flow-matching run of the same budget), scored on
the same samples' noise and the same real data and reported side by side: every row has a
``model`` (and ``query``) saying whose it is. Two real-data rows give the floor and the
ceiling (the real train vs test distance, the classifier's accuracy on real test images).

Python::

    from manyview.runs import load_run
    from manyview_selfeval.benchmarks import any_step
    result = any_step.run(load_run("runs/self_e"), compare="runs/flow_matching", out="bench")

Command line: ``manyview bench --suite any_step --checkpoint RUN --option
compare=OTHER_RUN``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from manyview.benchmarks import BenchmarkError
from manyview.options import check_int, check_number

SUITE = "any_step"
DEFAULT_STEPS = (1, 2, 4, 8, 16, 50)
"""The numbers of sampling steps measured by default."""
GRID_PER_PROMPT = 8
"""Samples per prompt (one row per class) in each PNG grid."""

__all__ = ["DEFAULT_STEPS", "SUITE", "PromptGenerator", "example_run", "run"]


@runtime_checkable
class PromptGenerator(Protocol):
    """What ``any_step`` reads from a run's recipe (the ``self_e`` recipe has it): the
    :class:`manyview.runs.ImageGenerator` members (``sample(n, *, steps, labels,
    generator)`` in [0, 1], ``sample_steps``, ``num_classes``) and ``class_prompts``, the
    prompt a label stands for (``class_prompts[c]`` names class c)."""

    sample_steps: int
    num_classes: int | None
    class_prompts: list[str]

    def sample(
        self,
        n: int,
        *,
        steps: int | None = None,
        labels: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor: ...


def example_run(tmp_path: str | Path) -> Any:
    """A tiny ``self_e`` run (its recipe's example configuration, 2 steps), for the
    benchmark contract tests."""
    from manyview.runs import load_run
    from manyview.testing.recipes import example_config
    from manyview.training.trainer import Trainer

    config = example_config("self_e", ["run.steps=2", "run.checkpoint_every=2"])
    Trainer(config, Path(tmp_path), progress=False).fit()
    return load_run(tmp_path)


# ----------------------------------------------------------------------------- inputs


def _load(model: Any, device: str, what: str) -> Any:
    from manyview.runs import RunError, load_run

    if isinstance(model, str | os.PathLike):
        try:
            return load_run(model, device=device)
        except RunError as exc:
            raise BenchmarkError(f"{SUITE}: {what}: {exc}") from None
    return model


def _generator_of(model: Any, what: str) -> Any:
    recipe = getattr(model, "recipe", None)
    if not isinstance(recipe, PromptGenerator) or not recipe.num_classes:
        name = type(recipe if recipe is not None else model).__name__
        raise BenchmarkError(
            f"{SUITE}: the {what}'s recipe {name} is not a PromptGenerator (it needs sample, "
            "sample_steps, num_classes and class_prompts, as the self_e recipe has); train one "
            "with recipe = 'self_e'"
        )
    return recipe


def _images_labels(dataset: Any) -> tuple[Tensor, Tensor]:
    n = len(dataset)
    if n == 0:
        raise BenchmarkError(f"{SUITE}: the dataset split is empty")
    fetch = getattr(dataset, "get_batch", None)
    if fetch is not None:
        batch = fetch(list(range(n)))
    else:
        from torch.utils.data import default_collate

        batch = default_collate([dataset[i] for i in range(n)])
    if "image" not in batch or "label" not in batch:
        raise BenchmarkError(f"{SUITE}: the dataset's samples need 'image' and 'label'")
    return torch.as_tensor(batch["image"]).float(), torch.as_tensor(batch["label"]).long()


def _steps(steps: Any) -> list[int]:
    if isinstance(steps, int | str):
        steps = [steps]
    try:
        out = sorted({check_int(k, "steps", SUITE) for k in steps})
    except (TypeError, ValueError) as exc:
        raise BenchmarkError(f"{str(exc).splitlines()[0]} (a list of sampling steps)") from None
    if not out:
        raise BenchmarkError(f"{SUITE}: steps is empty; give at least one number of steps")
    return out


def _sampling(guidance: Any, scale: Any) -> dict[str, Any]:
    """The sampler overrides given to ``sample`` (the recipes' defaults when None)."""
    options: dict[str, Any] = {}
    if guidance is not None:
        options["guidance"] = str(guidance)
    if scale is not None:
        value = check_number(scale, "scale", SUITE)
        if value < 1:
            raise BenchmarkError(f"{SUITE}: scale must be >= 1 (1 is no guidance), got {value:g}")
        options["scale"] = value
    return options


# ----------------------------------------------------------------------------- scoring


def _draw(
    model: Any,
    labels: Tensor,
    steps: int,
    seed: int,
    batch_size: int,
    shape: tuple[int, ...],
    options: Mapping[str, Any],
) -> Tensor:
    """Samples for ``labels`` at ``steps`` steps, ``batch_size`` per call, from one CPU
    generator seeded with ``seed``: (n, C, H, W) in [0, 1] on the CPU."""
    g = torch.Generator().manual_seed(seed)
    parts = []
    for start in range(0, len(labels), batch_size):
        y = labels[start : start + batch_size]
        try:
            x = model.sample(len(y), steps=steps, labels=y, generator=g, **options)
        except ValueError as exc:
            raise BenchmarkError(f"{SUITE}: {str(exc).strip().splitlines()[0]}") from None
        if not isinstance(x, Tensor) or tuple(x.shape) != (len(y), *shape):
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise BenchmarkError(
                f"{SUITE}: sample({len(y)}, steps={steps}) returned {got}; expected "
                f"{(len(y), *shape)}, the shape of the dataset's images"
            )
        x = x.detach().float().cpu()
        if not torch.isfinite(x).all():
            raise BenchmarkError(f"{SUITE}: sample(steps={steps}) returned non-finite values")
        parts.append(x.clamp(0.0, 1.0))
    return torch.cat(parts)


def _score(
    classifier: Any, images: Tensor, labels: Tensor, chunk: int = 1024
) -> tuple[Tensor, float]:
    """``(features (n, 64) float64, accuracy)`` of images against the labels they were
    asked for."""
    feats, correct = [], 0
    with torch.no_grad():
        for x, y in zip(images.split(chunk), labels.split(chunk), strict=True):
            z = classifier.features(x)
            feats.append(z.double())
            correct += int((classifier.head(z).argmax(1) == y).sum())
    return torch.cat(feats), correct / len(labels)


def _row(task: str, metric: str, value: float, model: str | None, steps: int | None) -> dict:
    """A row of the core schema (``query`` the model's label; ``target`` and ``baseline``
    None) with ``model`` and ``steps``."""
    return {
        "suite": SUITE,
        "task": task,
        "query": model if model is not None else "real",
        "target": None,
        "metric": metric,
        "value": float(value),
        "baseline": None,
        "model": model,
        "steps": steps,
    }


def _labels_of(models: Sequence[Any], paths: Sequence[Any]) -> list[str]:
    """Each run's label: its recipe's ``mode`` when the runs' differ, else its directory."""
    modes = [str(getattr(m.recipe, "mode", "")) for m in models]
    if len(models) == 1 or (all(modes) and len(set(modes)) == len(modes)):
        return [m or "run" for m in modes]
    names = [
        Path(str(getattr(m, "path", p))).name or f"run{i}"
        for i, (m, p) in enumerate(zip(models, paths, strict=True))
    ]
    return names if len(set(names)) == len(names) else [f"run{i}" for i in range(len(models))]


def run(
    model: Any,
    *,
    out: str | os.PathLike[str] | None = None,
    compare: Any = None,
    steps: int | Sequence[int] = DEFAULT_STEPS,
    num_samples: int | None = None,
    split: str = "test",
    batch_size: int = 256,
    device: str = "cpu",
    seed: int = 0,
    guidance: str | None = None,
    scale: float | None = None,
    cache: bool = True,
) -> dict[str, Any]:
    """Run the suite; return ``{"rows": [...], "meta": {...}, "files": [...]}``.

    Args:
        model: a :class:`manyview.Run` (or its directory) whose recipe is a
            :class:`PromptGenerator` (the ``self_e`` recipe).
        out: where to write ``bench.json``, ``bench.md``, ``quality_vs_steps.png`` (both
            measures against K, every run) and ``samples_<model>_steps<K>.png`` (a grid per
            run and K: one row per class, ``GRID_PER_PROMPT`` samples of its prompt).
        compare: another run (or its directory) scored the same way, side by side.
        steps: the numbers of sampling steps K.
        num_samples: samples per K and run (default: the split's size), the classes of the
            split's labels in order (cycled).
        split: the real images the Fréchet distance compares with.
        batch_size: samples per ``sample`` call.
        device: where the runs sample.
        seed: every K and run starts from a CPU generator seeded with it (the same noise),
            and the reference classifier's training.
        guidance, scale: the sampler's guidance and weight ω (default: each run's own).
        cache: keep the reference classifier's weights under the data root.
    """
    from manyview.benchmarks.generation import frechet_distance, reference_classifier

    main = _load(model, device, "checkpoint")
    generator = _generator_of(main, "run")
    models, paths = [main], [model]
    if compare is not None and compare is not False and compare != "":
        other = _load(compare, device, "compare")
        _generator_of(other, "compare run")
        models.append(other)
        paths.append(compare)
    if not callable(getattr(main, "dataset", None)):
        raise BenchmarkError(f"{SUITE}: {type(main).__name__} has no dataset(split); give a Run")
    try:
        step_counts = _steps(steps)
        batch_size = check_int(batch_size, "batch_size", SUITE)
        seed = check_int(seed, "seed", SUITE, least=0)
        if num_samples is not None:
            num_samples = check_int(num_samples, "num_samples", SUITE, least=2)
        options = _sampling(guidance, scale)
    except ValueError as exc:
        raise BenchmarkError(str(exc).strip().splitlines()[0]) from None
    for m in models:
        m.to(device)

    train_x, train_y = _images_labels(main.dataset("train"))
    real_x, real_y = _images_labels(main.dataset(split))
    shape = tuple(real_x.shape[1:])
    classes = int(generator.num_classes)
    for m in models[1:]:
        if m.recipe.num_classes != classes or tuple(m.recipe.image_shape) != shape:
            raise BenchmarkError(
                f"{SUITE}: the compare run generates {m.recipe.num_classes} classes of "
                f"{tuple(m.recipe.image_shape)} images; the run {classes} of {shape}: compare "
                "runs of one dataset"
            )
    if int(real_y.max()) >= classes:
        raise BenchmarkError(
            f"{SUITE}: the {split} split has labels up to {int(real_y.max())} but the model "
            f"has {classes} classes"
        )
    classifier = reference_classifier(
        train_x, train_y, num_classes=max(classes, int(train_y.max()) + 1), seed=seed, cache=cache
    )
    real_feats, real_acc = _score(classifier, real_x, real_y)
    train_feats, _ = _score(classifier, train_x, train_y)
    n = len(real_y) if num_samples is None else num_samples
    labels = real_y.repeat(math.ceil(n / len(real_y)))[:n]
    grid_labels = torch.arange(classes).repeat_interleave(GRID_PER_PROMPT)

    names = _labels_of(models, paths)
    rows: list[dict[str, Any]] = []
    grids: dict[tuple[str, int], Tensor] = {}
    for name, m in zip(names, models, strict=True):
        for k in step_counts:
            x = _draw(m, labels, k, seed, batch_size, shape, options)
            feats, acc = _score(classifier, x, labels)
            rows.append(_row("classifier_accuracy", f"steps={k}", acc, name, k))
            rows.append(
                _row("frechet_distance", f"steps={k}", frechet_distance(feats, real_feats), name, k)
            )
            if out is not None:
                grids[(name, k)] = _draw(m, grid_labels, k, seed + 1, batch_size, shape, options)
    rows.append(_row("classifier_accuracy", f"real {split} images", real_acc, None, None))
    rows.append(
        _row(
            "frechet_distance",
            f"real train vs {split}",
            frechet_distance(train_feats, real_feats),
            None,
            None,
        )
    )
    meta = {
        "suite": SUITE,
        "split": split,
        "models": names,
        "runs": [str(getattr(m, "path", p)) for m, p in zip(models, paths, strict=True)],
        "steps": step_counts,
        "num_samples": n,
        "num_classes": classes,
        "prompts": list(generator.class_prompts),
        "sampling": options or "each run's defaults",
        "n_train": len(train_y),
        "n_test": len(real_y),
    }
    result: dict[str, Any] = {"rows": rows, "meta": meta, "files": []}
    if out is not None:
        result["files"] = write_outputs(result, out, grids)
    return result


# ----------------------------------------------------------------------------- outputs


def markdown(rows: Sequence[Mapping[str, Any]], meta: Mapping[str, Any]) -> str:
    """``bench.md``: per measure, a table of K against every run, then the real-data rows."""
    names = list(meta["models"])
    lines = [f"# Benchmark `{SUITE}`", ""]
    for key in ("runs", "split", "num_samples", "num_classes", "prompts", "sampling"):
        lines.append(f"- {key}: {meta[key]}")
    lines.append("")
    for task, title in (
        ("classifier_accuracy", "Classifier accuracy (higher is better)"),
        ("frechet_distance", "Fréchet distance (lower is better)"),
    ):
        lines += [f"## {title}", "", "| steps | " + " | ".join(names) + " |"]
        lines.append("|---:|" + "---:|" * len(names))
        for k in meta["steps"]:
            cells = []
            for name in names:
                hit = [
                    r for r in rows if r["task"] == task and r["model"] == name and r["steps"] == k
                ]
                cells.append(f"{hit[0]['value']:.3f}" if hit else "-")
            lines.append(f"| {k} | " + " | ".join(cells) + " |")
        for r in rows:
            if r["task"] == task and r["model"] is None:
                lines += ["", f"{r['metric']}: {r['value']:.3f}"]
        lines.append("")
    return "\n".join(lines)


def plot(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Both measures against K (log scale), a line per run, the real-data rows dotted."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.8))
    FigureCanvasAgg(fig)
    tasks = (
        ("classifier_accuracy", "classifier accuracy (higher is better)"),
        ("frechet_distance", "Fréchet distance (lower is better)"),
    )
    names = list(dict.fromkeys(r["model"] for r in rows if r["model"] is not None))
    for i, (task, label) in enumerate(tasks):
        ax = fig.add_subplot(1, 2, i + 1)
        for name in names:
            pick = sorted(
                (r for r in rows if r["task"] == task and r["model"] == name),
                key=lambda r: r["steps"],
            )
            ax.plot([r["steps"] for r in pick], [r["value"] for r in pick], "o-", label=name)
        for r in rows:
            if r["task"] == task and r["model"] is None:
                ax.axhline(r["value"], ls=":", color="black", label=r["metric"])
        ks = sorted({r["steps"] for r in rows if r["steps"] is not None})
        ax.set_xscale("log", base=2)
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.set_xlabel("sampling steps K")
        ax.set_ylabel(label)
        if task == "classifier_accuracy":
            ax.set_ylim(0, 1.05)
        ax.legend(fontsize=8)
    fig.suptitle("any-step quality")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    return path


def write_outputs(
    result: Mapping[str, Any], out: str | os.PathLike[str], grids: Mapping[tuple[str, int], Tensor]
) -> list[str]:
    """Write ``bench.json``, ``bench.md``, ``quality_vs_steps.png`` and the sample grids;
    return their paths."""
    from manyview.benchmarks.generation import save_image_grid

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(result["rows"], indent=1) + "\n")
    (out / "bench.md").write_text(markdown(result["rows"], result["meta"]))
    files = [
        out / "bench.json",
        out / "bench.md",
        plot(result["rows"], out / "quality_vs_steps.png"),
    ]
    for (name, k), images in grids.items():
        files.append(
            save_image_grid(images, out / f"samples_{name}_steps{k}.png", nrow=GRID_PER_PROMPT)
        )
    return [str(f) for f in files]
