"""The ``crossmodal`` benchmark suite.

For every modality a model has an encoder for, on a dataset's train and test splits:

* retrieval Recall@1/5/10 for every ordered pair of modalities, class-level (a hit is a
  retrieved item of the query's class) and, where rows are true pairs (same index = the
  same instance), instance-level;
* zero-shot accuracy of every non-text modality against the class names' prompts encoded by
  the model's ``text`` encoder (prompt ensembling), when a ``text`` modality and class names
  exist;
* linear-probe (logistic regression on train embeddings, scored on test) and kNN accuracy;
* alignment (between modalities of one instance), uniformity and effective rank of the
  L2-normalised test embeddings;

each for the trained model and the random-init model (same seed and configuration), side by
side. Embeddings are the model's encoder followed by its projector (the shared space), in
eval mode, without the training views.

Python::

    from manyview.benchmarks import crossmodal
    result = crossmodal.run("runs/my-run", out="runs/my-run/bench")
    result["rows"]  # what bench.json holds

Command line: ``manyview bench --checkpoint runs/my-run``.
"""

from __future__ import annotations

import copy
import itertools
import json
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from manyview.benchmarks import BenchmarkError
from manyview.benchmarks.prompts import format_prompts
from manyview.benchmarks.scores import (
    ensemble_prompts,
    knn_accuracy,
    linear_probe_accuracy,
    recall_at_k,
)
from manyview.metrics import alignment, effective_rank, uniformity

SUITE = "crossmodal"
TEXT = "text"

__all__ = ["SUITE", "embed_split", "evaluate", "load_run", "run"]


# ----------------------------------------------------------------------------- models


def _towers(model: Any) -> tuple[Mapping[str, nn.Module], Mapping[str, nn.Module]]:
    """(encoders, projectors) of a recipe model (``ModuleDict`` or attributes)."""

    def part(name: str) -> Any:
        if isinstance(model, Mapping | nn.ModuleDict) and name in model:
            return model[name]
        return getattr(model, name, None)

    encoders = part("encoders")
    if encoders is None or not len(encoders):
        raise BenchmarkError(
            "the model has no per-modality encoders (expected model['encoders'], as the "
            "contrastive recipe builds)"
        )
    projectors = part("projectors") or {}
    return encoders, projectors


def _encode(model: Any, modality: str, inputs: Any) -> Tensor:
    encoders, projectors = _towers(model)
    z = encoders[modality](inputs)
    if modality in projectors:
        z = projectors[modality](z)
    return z


def _seed_all(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:  # pragma: no cover - numpy is a dependency
        pass


def _make_dataset(data: Mapping[str, Any], split: str) -> Any:
    import manyview

    options = {**data["options"], "split": split}
    try:
        return manyview.create("dataset", data["name"], **options)
    except TypeError as exc:
        raise BenchmarkError(
            f"dataset {data['name']!r} cannot make the {split!r} split: {exc}"
        ) from None
    except (LookupError, ValueError) as exc:
        raise BenchmarkError(f"dataset {data['name']!r} ({split!r} split): {exc}") from None


def load_run(run_dir: str | Path) -> dict[str, Any]:
    """Rebuild a run's model from its directory: ``config.toml`` plus the newest checkpoint
    (``checkpoints/last/model.safetensors``), and the random-init model of the same seed and
    configuration (what training started from).

    Returns ``{"model", "baseline", "config", "checkpoint", "run_dir"}``.
    """
    import manyview
    from manyview.config import ConfigError, load_config
    from manyview.training.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise BenchmarkError(f"checkpoint: {run_dir} is not a directory")
    checkpoint = None
    if (run_dir / "model.safetensors").is_file():  # a step directory was given
        checkpoint, run_dir = run_dir, run_dir.parent.parent
    if not (run_dir / "config.toml").is_file():
        raise BenchmarkError(f"checkpoint: {run_dir} has no config.toml (is it a run directory?)")
    if checkpoint is None:
        checkpoint = latest_checkpoint(run_dir / "checkpoints")
        if checkpoint is None:
            raise BenchmarkError(f"checkpoint: {run_dir} has no complete checkpoint")
    try:
        config = load_config(run_dir / "config.toml")
        weights, _ = load_checkpoint(checkpoint)
        dataset = _make_dataset(config["data"], "train")
        factory = manyview.entry("recipe", config["run"]["recipe"]).load()
        _seed_all(int(config["run"]["seed"]))  # as the trainer does before building
        baseline = factory(config, dataset).model
    except (ConfigError, CheckpointError, LookupError) as exc:
        raise BenchmarkError(f"checkpoint {run_dir}: {exc}") from None
    model = copy.deepcopy(baseline)
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        raise BenchmarkError(
            f"checkpoint {checkpoint} does not fit the model its config.toml builds: {exc}"
        ) from None
    return {
        "model": model,
        "baseline": baseline,
        "config": config,
        "checkpoint": str(checkpoint),
        "run_dir": str(run_dir),
    }


def random_init(model: nn.Module, seed: int = 0) -> nn.Module:
    """A copy of ``model`` with every submodule's parameters reset (``reset_parameters``)."""
    fresh = copy.deepcopy(model)
    _seed_all(seed)
    for module in fresh.modules():
        reset = getattr(module, "reset_parameters", None)
        if callable(reset):
            reset()
    return fresh


# ----------------------------------------------------------------------------- embedding


def _collate(dataset: Any, indices: list[int]) -> Mapping[str, Any]:
    fetch = getattr(dataset, "get_batch", None)
    if fetch is not None:
        return fetch(indices)
    from torch.utils.data import default_collate

    return default_collate([dataset[i] for i in indices])


def _to(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, Tensor):
        return batch.to(device)
    if isinstance(batch, Mapping):
        return {k: _to(v, device) for k, v in batch.items()}
    return batch


@torch.no_grad()
def embed_split(
    model: Any,
    dataset: Any,
    modalities: Sequence[str],
    *,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    split: str = "test",
) -> tuple[dict[str, Tensor], Tensor]:
    """``({modality: (N, D) float CPU tensor}, labels (N,))`` of a whole split, batched, in
    eval mode without gradients (the model's modes are restored afterwards)."""
    n = len(dataset)
    if n == 0:
        raise BenchmarkError(f"the {split} split is empty")
    device = torch.device(device)
    modules = [model] if isinstance(model, nn.Module) else []
    modes = [(m, m.training) for mod in modules for m in mod.modules()]
    for mod in modules:
        mod.to(device).eval()
    out: dict[str, list[Tensor]] = {m: [] for m in modalities}
    labels: list[Tensor] = []
    try:
        for start in range(0, n, batch_size):
            batch = _collate(dataset, list(range(start, min(start + batch_size, n))))
            if "label" not in batch:
                raise BenchmarkError(f"the {split} split's samples have no 'label'")
            for m in modalities:
                if m not in batch:
                    have = sorted(k for k in batch if k not in ("label", "index"))
                    raise BenchmarkError(
                        f"the {split} split's samples have no {m!r} (they have {have})"
                    )
                out[m].append(_encode(model, m, _to(batch[m], device)).float().cpu())
            labels.append(torch.as_tensor(batch["label"]).long().reshape(-1))
    finally:
        for m, mode in modes:
            m.train(mode)
    return {m: torch.cat(v) for m, v in out.items()}, torch.cat(labels)


def _prompts(class_names: Sequence[str], templates: Any) -> list[list[str]]:
    try:
        return format_prompts(list(class_names), templates)
    except ValueError as exc:
        raise BenchmarkError(f"zero-shot prompts: {exc}") from None


@torch.no_grad()
def class_embeddings(
    model: Any,
    class_names: Sequence[str],
    templates: Any = "plain",
    *,
    device: str | torch.device = "cpu",
) -> Tensor:
    """``(C, D)`` ensembled prompt embeddings of the classes through the model's text tower."""
    prompts = _prompts(class_names, templates)
    flat = [p for per_class in prompts for p in per_class]
    modes = [(m, m.training) for m in model.modules()] if isinstance(model, nn.Module) else []
    if isinstance(model, nn.Module):
        model.to(device).eval()
    try:
        z = _encode(model, TEXT, flat).float().cpu()
    finally:
        for m, mode in modes:
            m.train(mode)
    return ensemble_prompts(z.reshape(len(prompts), len(prompts[0]), -1))


# ----------------------------------------------------------------------------- scores


def _templates_for(templates: Any, modality: str, dataset: Any) -> Any:
    if templates is None:
        templates = getattr(dataset, "prompt_templates", None) or "plain"
    if isinstance(templates, Mapping):
        return templates.get(modality, templates.get("default", "plain"))
    return templates


def evaluate(
    model: Any,
    dataset_train: Any,
    dataset_test: Any,
    modalities: Sequence[str],
    *,
    class_names: Sequence[str] | None = None,
    templates: Any = None,
    paired: bool = True,
    ks: Sequence[int] = (1, 5, 10),
    knn_k: int = 10,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    seed: int = 0,
    embeddings: dict[str, Any] | None = None,
) -> dict[tuple[str, str, str | None, str], float]:
    """Every score of one model: ``{(task, query, target, metric): value}``.

    If ``embeddings`` is a dict, it receives the test split's embeddings (``{modality:
    (N, D)}`` under ``"test"``) and labels (``"labels"``), e.g. for plots."""
    train, ytrain = embed_split(
        model, dataset_train, modalities, batch_size=batch_size, device=device, split="train"
    )
    test, ytest = embed_split(
        model, dataset_test, modalities, batch_size=batch_size, device=device, split="test"
    )
    if embeddings is not None:
        embeddings.update(test=test, labels=ytest)
    scores: dict[tuple[str, str, str | None, str], float] = {}
    for q, t in itertools.permutations(modalities, 2):
        for k, v in recall_at_k(test[q], test[t], ytest, ytest, ks=ks).items():
            scores[("retrieval_class", q, t, f"R@{k}")] = v
        if paired:
            for k, v in recall_at_k(test[q], test[t], ks=ks, level="instance").items():
                scores[("retrieval_instance", q, t, f"R@{k}")] = v
    if TEXT in modalities and class_names:
        for m in modalities:
            if m == TEXT:
                continue
            weights = class_embeddings(
                model, class_names, _templates_for(templates, m, dataset_test), device=device
            )
            pred = (F.normalize(test[m], dim=-1) @ weights.T).argmax(dim=1)
            scores[("zero_shot", m, TEXT, "accuracy")] = float((pred == ytest).float().mean())
    for m in modalities:
        scores[("linear_probe", m, None, "accuracy")] = linear_probe_accuracy(
            train[m], ytrain, test[m], ytest, seed=seed
        )
        scores[("knn", m, None, f"accuracy@{knn_k}")] = knn_accuracy(
            train[m], ytrain, test[m], ytest, k=knn_k
        )
        z = F.normalize(test[m], dim=-1)
        scores[("uniformity", m, None, "uniformity")] = uniformity(z) if len(z) > 1 else 0.0
        scores[("effective_rank", m, None, "effective_rank")] = effective_rank(z)
    if paired:
        for a, b in itertools.combinations(modalities, 2):
            if test[a].shape[1] == test[b].shape[1]:
                pair = torch.stack([F.normalize(test[a], dim=-1), F.normalize(test[b], dim=-1)], 1)
                scores[("alignment", a, b, "alignment")] = alignment(pair)
    return scores


# ----------------------------------------------------------------------------- suite


def run(
    model_or_run_dir: Any,
    dataset_train: Any = None,
    dataset_test: Any = None,
    *,
    modalities: Sequence[str] | None = None,
    baseline: Any = "random",
    class_names: Sequence[str] | None = None,
    templates: Any = None,
    paired: bool | None = None,
    split: str = "test",
    ks: Sequence[int] = (1, 5, 10),
    knn_k: int = 10,
    batch_size: int = 256,
    device: str = "cpu",
    seed: int | None = None,
    out: str | Path | None = None,
    plots: bool = True,
) -> dict[str, Any]:
    """Run the suite; return ``{"rows": [...], "meta": {...}, "files": [...]}``.

    Args:
        model_or_run_dir: a run directory (``config.toml`` + ``checkpoints/``), a checkpoint
            step directory, or a model (``model["encoders"]``/``["projectors"]`` per modality).
        dataset_train, dataset_test: the splits; for a run directory they default to the
            run's ``[data]`` dataset with ``split="train"`` and ``split=split``.
        modalities: which modalities (default: every one the model has an encoder for).
        baseline: ``"random"`` (for a run directory: the same seed and config, untrained;
            for a model: a copy with parameters reset), another model, or ``None``.
        class_names: class names in label order for zero-shot (default: the test dataset's
            ``class_names``).
        templates: prompt templates (a set name, a str with ``{}``, a list, or a dict
            modality -> templates); default: the dataset's ``prompt_templates`` or ``"{}"``.
        paired: whether same-index rows of the modalities are one instance (instance-level
            retrieval and alignment); default: the dataset's ``paired`` attribute, else True.
        seed: for the probe and a model's random re-init (default: the run's seed, else 0).
        out: where to write ``bench.json``, ``bench.md`` and the PNG plots (None: nowhere).
    """
    meta: dict[str, Any] = {"suite": SUITE, "split": split}
    if isinstance(model_or_run_dir, str | Path):
        loaded = load_run(model_or_run_dir)
        model = loaded["model"]
        meta.update(checkpoint=loaded["checkpoint"], run_dir=loaded["run_dir"])
        if dataset_train is None:
            dataset_train = _make_dataset(loaded["config"]["data"], "train")
        if dataset_test is None:
            dataset_test = _make_dataset(loaded["config"]["data"], split)
        if isinstance(baseline, str) and baseline == "random":
            baseline = loaded["baseline"]
        seed = int(loaded["config"]["run"]["seed"]) if seed is None else seed
    else:
        model = model_or_run_dir
        seed = 0 if seed is None else seed
        if dataset_train is None or dataset_test is None:
            raise BenchmarkError("with a model, pass dataset_train and dataset_test")
        if isinstance(baseline, str) and baseline == "random":
            if not isinstance(model, nn.Module):
                raise BenchmarkError("baseline='random' needs an nn.Module model")
            baseline = random_init(model, seed)
    if isinstance(baseline, str):
        raise BenchmarkError(f"baseline must be 'random', a model or None, got {baseline!r}")
    encoders, _ = _towers(model)
    available = list(encoders.keys())
    if modalities is None:
        modalities = available
    modalities = list(modalities)
    missing = [m for m in modalities if m not in encoders]
    if missing:
        raise BenchmarkError(
            f"no encoder for modality {', '.join(map(repr, missing))} in the model "
            f"(it has encoders for {available})"
        )
    if not modalities:
        raise BenchmarkError("no modalities to benchmark")
    for name, ds in (("train", dataset_train), ("test", dataset_test)):
        if len(ds) == 0:
            raise BenchmarkError(f"the {name} split is empty")
    if class_names is None:
        class_names = getattr(dataset_test, "class_names", None)
    if paired is None:
        paired = bool(getattr(dataset_test, "paired", True))
    options = dict(
        class_names=class_names,
        templates=templates,
        paired=paired,
        ks=ks,
        knn_k=knn_k,
        batch_size=batch_size,
        device=device,
        seed=seed,
    )
    seen: dict[str, dict[str, Any]] = {"trained": {}, "random-init": {}}
    trained = evaluate(
        model, dataset_train, dataset_test, modalities, embeddings=seen["trained"], **options
    )
    base = (
        evaluate(
            baseline,
            dataset_train,
            dataset_test,
            modalities,
            embeddings=seen["random-init"],
            **options,
        )
        if baseline is not None
        else {}
    )
    labels = getattr(dataset_test, "labels", None)
    meta.update(
        modalities=modalities,
        n_train=len(dataset_train),
        n_test=len(dataset_test),
        num_classes=int(torch.as_tensor(labels).max()) + 1 if labels is not None else None,
        class_names=list(class_names) if class_names else None,
        paired=paired,
        knn_k=knn_k,
        zero_shot=TEXT in modalities and bool(class_names),
    )
    rows = [
        {
            "suite": SUITE,
            "task": task,
            "query": query,
            "target": target,
            "metric": metric,
            "value": value,
            "baseline": base.get((task, query, target, metric)),
        }
        for (task, query, target, metric), value in trained.items()
    ]
    result: dict[str, Any] = {"rows": rows, "meta": meta, "files": []}
    if out is not None:
        embeddings = {name: e for name, e in seen.items() if e}
        result["files"] = write_outputs(result, out, plots=plots, embeddings=embeddings)
    return result


def write_outputs(
    result: Mapping[str, Any],
    out: str | Path,
    *,
    plots: bool = True,
    embeddings: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[str]:
    """Write ``bench.json`` (the flat list of rows), ``bench.md`` and the plots (with
    ``embeddings`` — ``{"trained" | "random-init": {"test": {modality: (N, D)}, "labels":
    (N,)}}`` — also the similarity heatmap and the 2-D embedding map)."""
    from manyview.benchmarks import report

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(result["rows"], indent=1) + "\n")
    (out / "bench.md").write_text(report.markdown(result["rows"], result["meta"]))
    files = [str(out / "bench.json"), str(out / "bench.md")]
    if plots:
        files += report.plots(result["rows"], result["meta"], out, embeddings=embeddings)
    return files
