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
from manyview.runs import Embedder, Run, RunError, load_run, seed_all

SUITE = "crossmodal"
TEXT = "text"

__all__ = ["SUITE", "class_embeddings", "embed_split", "evaluate", "random_init", "run"]


# ----------------------------------------------------------------------------- models


def _embedder(model: Any) -> Any:
    """``model`` if it follows the embedder protocol (``modalities``, ``encode``)."""
    if not isinstance(model, Embedder):
        raise BenchmarkError(
            f"cannot benchmark a {type(model).__name__}: give a run directory, a "
            "manyview.Run, or a model with `modalities` and `encode(modality, inputs)` "
            "(every recipe has them)"
        )
    return model


def random_init(model: nn.Module, seed: int = 0) -> nn.Module:
    """A copy of ``model`` with every submodule's parameters reset (``reset_parameters``)."""
    fresh = copy.deepcopy(model)
    seed_all(seed)
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
    """``({modality: (N, D) float CPU tensor}, labels (N,))`` of a whole split through an
    embedder's ``encode``, batched, in eval mode without gradients (an ``nn.Module``'s modes
    are restored afterwards)."""
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
                out[m].append(model.encode(m, _to(batch[m], device)).float().cpu())
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
        z = model.encode(TEXT, flat).float().cpu()
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
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise BenchmarkError(f"batch_size must be a positive integer, got {batch_size!r}")
    known = getattr(dataset_test, "class_names", None)
    if class_names and known and len(class_names) != len(known):
        raise BenchmarkError(
            f"class_names has {len(class_names)} names but the test split has "
            f"{len(known)} classes ({', '.join(map(str, list(known)[:5]))}"
            f"{', ...' if len(known) > 5 else ''}); give one name per class, in label order"
        )
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
            if len(ytest) and int(ytest.max()) >= len(class_names):
                raise BenchmarkError(
                    f"class_names has {len(class_names)} names but the test split has labels "
                    f"up to {int(ytest.max())}; give one name per class, in label order"
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
            step directory, a :class:`manyview.Run`, or any embedder (``modalities`` and
            ``encode(modality, inputs) -> (N, D)``, e.g. a recipe).
        dataset_train, dataset_test: the splits; for a run they default to the run's
            ``[data]`` dataset with ``split="train"`` and ``split=split``.
        modalities: which modalities (default: every one the model embeds).
        baseline: ``"random"`` (for a run: the same seed and config, untrained; for an
            ``nn.Module`` embedder: a copy with parameters reset), another embedder, or
            ``None``.
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
    try:
        if isinstance(model_or_run_dir, str | Path):
            model_or_run_dir = load_run(model_or_run_dir, device=device)
        if isinstance(model_or_run_dir, Run):
            model = model_or_run_dir
            meta.update(checkpoint=str(model.checkpoint), run_dir=str(model.path))
            if dataset_train is None:
                dataset_train = model.dataset("train")
            if dataset_test is None:
                dataset_test = model.dataset(split)
            if isinstance(baseline, str) and baseline == "random":
                baseline = model.baseline()
            seed = int(model.config["run"]["seed"]) if seed is None else seed
        else:
            model = _embedder(model_or_run_dir)
            seed = 0 if seed is None else seed
            if dataset_train is None or dataset_test is None:
                raise BenchmarkError("with a model, pass dataset_train and dataset_test")
            if isinstance(baseline, str) and baseline == "random":
                if not isinstance(model, nn.Module):
                    raise BenchmarkError("baseline='random' needs an nn.Module model")
                baseline = random_init(model, seed)
    except RunError as exc:
        raise BenchmarkError(f"checkpoint: {exc}") from None
    if isinstance(baseline, str):
        raise BenchmarkError(f"baseline must be 'random', a model or None, got {baseline!r}")
    if baseline is not None:
        baseline = _embedder(baseline)
    available = list(model.modalities)
    if modalities is None:
        modalities = available
    modalities = list(modalities)
    missing = [m for m in modalities if m not in available]
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
