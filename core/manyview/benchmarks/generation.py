"""The ``generation`` benchmark suite: the quality of a model's images against real ones.

For a run whose recipe generates images (the :class:`manyview.runs.ImageGenerator`
protocol: ``sample(n, *, steps, labels, generator) -> (n, C, H, W)`` in [0, 1],
``sample_steps``, ``num_classes``), at each number of sampling steps:

* the **Fréchet distance** between Gaussians fitted to the features of the generated and of
  the real images (the split's), Heusel et al. 2017, "GANs Trained by a Two Time-Scale
  Update Rule Converge to a Local Nash Equilibrium" (FID) — with the features of a small
  *reference classifier* trained on the dataset's own train split instead of Inception-v3:
  nothing is downloaded, and the features fit the dataset (digits are not ImageNet);
* for a class-conditional model, the **classifier accuracy**: how often the reference
  classifier recognises the class each image was conditioned on (the "classification
  accuracy score" idea of Ravuri & Vinyals 2019, the other way round);

each for the trained model and, side by side, its random-init twin (``run.baseline()``),
plus the Fréchet distance between the real train and test splits: the floor that a model
as good as the data reaches. Lower distances and higher accuracies are better.

Python::

    from manyview.benchmarks import generation
    result = generation.run(manyview.load_run("runs/ddpm"), out="runs/ddpm/bench")

Command line: ``manyview bench --checkpoint runs/ddpm --suite generation``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from manyview.benchmarks import BenchmarkError
from manyview.options import check_int
from manyview.runs import ImageGenerator, Run, RunError

SUITE = "generation"
MODALITY = "image"
DEFAULT_STEPS = (1, 2, 4, 8)
"""Step counts measured besides the recipe's own ``sample_steps``."""
CLASSIFIER_VERSION = 1
"""Bumped when the reference classifier's architecture or training changes (a new cache key)."""
GRID_IMAGES = 64
"""How many samples of each step count the PNG grid shows."""
REAL_BATCH = 1024
"""Real images read and embedded per batch (at least ``batch_size``)."""

__all__ = [
    "SUITE",
    "ReferenceClassifier",
    "frechet_distance",
    "plot_quality_vs_steps",
    "reference_classifier",
    "run",
    "save_image_grid",
    "train_classifier",
]


# ----------------------------------------------------------------------------- the distance


def _features(x: Any, name: str) -> Any:
    import numpy as np

    if isinstance(x, Tensor):
        x = x.detach().cpu().double().numpy()
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"frechet_distance: {name} must be (N, D) features, got shape {a.shape}")
    if len(a) < 2:
        raise ValueError(
            f"frechet_distance: {name} has {len(a)} row(s); a covariance needs at least 2"
        )
    if not np.isfinite(a).all():
        raise ValueError(f"frechet_distance: {name} has non-finite values (NaN or inf)")
    return a


def _sqrt_psd(s: Any) -> Any:
    """The symmetric square root of a positive semi-definite matrix (eigenvalues clamped at 0)."""
    import numpy as np

    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(a: Any, b: Any) -> float:
    """The Fréchet (2-Wasserstein) distance between Gaussians fitted to features ``a``
    ``(N, D)`` and ``b`` ``(M, D)`` (tensors or arrays), in float64:

    ``||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2})``

    (Heusel et al. 2017; the FID formula, with unbiased covariances). The trace of the
    matrix square root is computed stably from symmetric eigendecompositions:
    ``Tr((S_a S_b)^{1/2}) = sum(sqrt(eig(S_a^{1/2} S_b S_a^{1/2})))``, eigenvalues clamped at
    0, so nearly singular covariances (fewer samples than dimensions) give a real, finite
    value. Symmetric in ``a`` and ``b``; 0 for identical sets.

    Raises:
        ValueError: fewer than 2 rows, a different ``D``, or non-finite values.
    """
    import numpy as np

    a, b = _features(a, "a"), _features(b, "b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"frechet_distance: a has {a.shape[1]} features per row but b has {b.shape[1]}; "
            "give features of one extractor"
        )
    mu = a.mean(0) - b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False, ddof=1), np.cov(b, rowvar=False, ddof=1)
    s_a, s_b = np.atleast_2d(s_a), np.atleast_2d(s_b)
    root = _sqrt_psd(s_a)
    inner = root @ s_b @ root
    inner = (inner + inner.T) / 2.0
    cross = float(np.sqrt(np.clip(np.linalg.eigvalsh(inner), 0.0, None)).sum())
    value = float(mu @ mu + np.trace(s_a) + np.trace(s_b) - 2.0 * cross)
    return max(value, 0.0)


# ----------------------------------------------------------------------------- the reference


class ReferenceClassifier(nn.Module):
    """A small classifier of a dataset's images whose penultimate layer is the feature space
    of the Fréchet distance.

    Images of side 8 or more: two 3x3 convolution + ReLU + 2x2 max-pool stages (8 and 16
    channels), then a 64-unit hidden layer; smaller images: an MLP with two 128- and 64-unit
    hidden layers. Input ``(N, C, H, W)`` in [0, 1].

    Args:
        channels, size: the images' channels and side (``size`` x ``size``).
        num_classes: the number of classes.
    """

    def __init__(self, channels: int, size: int, num_classes: int) -> None:
        super().__init__()
        self.channels, self.size, self.num_classes = channels, size, num_classes
        if size >= 8:
            side = size // 4
            self.body = nn.Sequential(
                nn.Conv2d(channels, 8, 3, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Conv2d(8, 16, 3, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Flatten(),
                nn.Linear(16 * side * side, 64),
                nn.ReLU(),
            )
        else:
            self.body = nn.Sequential(
                nn.Flatten(),
                nn.Linear(channels * size * size, 128),
                nn.ReLU(),
                nn.Linear(128, 64),
                nn.ReLU(),
            )
        self.head = nn.Linear(64, num_classes)

    @property
    def architecture(self) -> dict[str, Any]:
        """What the cache key records of the network."""
        kind = "cnn" if self.size >= 8 else "mlp"
        return {
            "kind": kind,
            "channels": self.channels,
            "size": self.size,
            "classes": self.num_classes,
        }

    def features(self, x: Tensor) -> Tensor:
        """``(N, 64)`` penultimate-layer features of images ``(N, C, H, W)``."""
        return self.body(x.float())

    def forward(self, x: Tensor) -> Tensor:
        """``(N, num_classes)`` logits."""
        return self.head(self.features(x))

    @torch.no_grad()
    def predict(self, x: Tensor) -> Tensor:
        """``(N,)`` predicted classes."""
        return self.forward(x).argmax(dim=1)


TRAINING = {"epochs": 10, "batch_size": 128, "lr": 1e-2, "weight_decay": 1e-4}
"""The reference classifier's training (AdamW, one-cycle learning rate, no augmentation)."""


def train_classifier(
    model: ReferenceClassifier, images: Tensor, labels: Tensor, *, seed: int = 0
) -> None:
    """Train ``model`` in place on ``images`` ``(N, C, H, W)`` and ``labels`` ``(N,)``
    (:data:`TRAINING`; seconds on a CPU for a few thousand small images), seeded, in one
    CPU thread (for so small a network more threads only add overhead and contention; the
    caller's thread count is restored)."""
    g = torch.Generator().manual_seed(seed)
    n, bs = len(images), TRAINING["batch_size"]
    steps = TRAINING["epochs"] * math.ceil(n / bs)
    opt = torch.optim.AdamW(
        model.parameters(), lr=TRAINING["lr"], weight_decay=TRAINING["weight_decay"]
    )
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, TRAINING["lr"], total_steps=steps)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    model.train()
    try:
        for _ in range(TRAINING["epochs"]):
            order = torch.randperm(n, generator=g)
            for start in range(0, n, bs):
                idx = order[start : start + bs]
                loss = F.cross_entropy(model(images[idx]), labels[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
    finally:
        torch.set_num_threads(threads)
        model.eval()


def _cache_key(images: Tensor, labels: Tensor, model: ReferenceClassifier, seed: int) -> str:
    h = hashlib.sha256()
    recipe = {
        "version": CLASSIFIER_VERSION,
        "architecture": model.architecture,
        "training": TRAINING,
        "seed": seed,
        "torch": torch.__version__.split("+")[0],
    }
    h.update(json.dumps(recipe, sort_keys=True).encode())
    for t in (images.float().contiguous(), labels.long().contiguous()):
        h.update(f"{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()[:20]


def reference_classifier(
    images: Tensor,
    labels: Tensor,
    *,
    num_classes: int | None = None,
    seed: int = 0,
    cache: bool = True,
    root: str | os.PathLike[str] | None = None,
) -> ReferenceClassifier:
    """A :class:`ReferenceClassifier` trained on real ``images`` ``(N, C, H, W)`` in [0, 1]
    and their ``labels`` ``(N,)``, in eval mode with no gradients, on the CPU.

    With ``cache``, its weights are kept as ``reference_classifier/<key>.safetensors`` under
    :func:`manyview.datasets.cache.data_root` (``root``, else ``$MANYVIEW_DATA``, else
    ``~/.cache/manyview``), the key a hash of the images, the labels, the architecture, the
    training settings, the seed and :data:`CLASSIFIER_VERSION`: the same data never trains
    twice. A cache file that does not load is rebuilt, with a warning.
    """
    from safetensors.torch import load_file, save_file

    from manyview.datasets.cache import data_root

    images, labels = _check_images(images, "reference_classifier"), torch.as_tensor(labels).long()
    if labels.shape != (len(images),):
        raise ValueError(
            f"reference_classifier: labels must be ({len(images)},), got {tuple(labels.shape)}"
        )
    if num_classes is None:
        num_classes = int(labels.max()) + 1
    with torch.random.fork_rng(devices=[]):  # seeded initial weights; the caller's RNG untouched
        torch.manual_seed(seed)
        model = ReferenceClassifier(images.shape[1], images.shape[-1], num_classes)
    path = None
    if cache:
        path = (
            data_root(root)
            / "reference_classifier"
            / f"{_cache_key(images, labels, model, seed)}.safetensors"
        )
        if path.exists():
            try:
                model.load_state_dict(load_file(path))
                return model.eval().requires_grad_(False)
            except Exception as exc:  # a truncated or foreign file: rebuild it
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                warnings.warn(
                    f"reference classifier cache {path} is unreadable ({first}); retraining",
                    stacklevel=2,
                )
    with torch.random.fork_rng(devices=[]):
        train_classifier(model, images, labels, seed=seed)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".safetensors")
        os.close(fd)
        try:
            save_file({k: v.contiguous() for k, v in model.state_dict().items()}, tmp)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return model.eval().requires_grad_(False)


# ----------------------------------------------------------------------------- pictures


def _check_images(images: Any, who: str) -> Tensor:
    if not isinstance(images, Tensor) or images.ndim != 4:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"{who}: images must be an (N, C, H, W) tensor, got {shape}")
    if len(images) == 0:
        raise ValueError(f"{who}: no images")
    return images.detach().cpu().float()


def save_image_grid(
    images: Tensor, path: str | os.PathLike[str], nrow: int | None = None, *, cell: int = 64
) -> Path:
    """Write ``images`` ``(N, C, H, W)`` in [0, 1] (1 or 3 channels) as one PNG grid of
    ``nrow`` images per row (default: about the square root of N), each upscaled by nearest
    neighbour to at least ``cell`` pixels a side (16x16 digits become visible 64x64 cells),
    2-pixel gaps. Returns the path."""
    from PIL import Image
    from torchvision.utils import make_grid

    images = _check_images(images, "save_image_grid")
    if images.shape[1] not in (1, 3):
        raise ValueError(f"save_image_grid: images need 1 or 3 channels, got {images.shape[1]}")
    scale = max(1, math.ceil(cell / min(images.shape[-2:])))
    if scale > 1:
        images = F.interpolate(images, scale_factor=scale, mode="nearest")
    nrow = nrow or math.ceil(math.sqrt(len(images)))
    grid = make_grid(images.clamp(0.0, 1.0), nrow=nrow, padding=2, pad_value=1.0)
    array = (grid * 255.0).round().to(torch.uint8).permute(1, 2, 0).numpy()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array[..., 0] if images.shape[1] == 1 else array).save(path)
    return path


def plot_quality_vs_steps(
    rows: Sequence[Mapping[str, Any]], path: str | os.PathLike[str]
) -> Path | None:
    """The suite's rows as a PNG: Fréchet distance (and classifier accuracy, when there are
    such rows) against the number of sampling steps, trained next to random-init, the real
    train-vs-test distance as a dashed floor. ``None`` when no row has a step count."""
    from manyview.benchmarks.report import _pyplot

    tasks = [
        t
        for t in ("frechet_distance", "classifier_accuracy")
        if any(r["task"] == t and r.get("steps") is not None for r in rows)
    ]
    if not tasks:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 3.8), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        pick = sorted(
            (r for r in rows if r["task"] == task and r.get("steps") is not None),
            key=lambda r: r["steps"],
        )
        steps = [r["steps"] for r in pick]
        ax.plot(steps, [r["value"] for r in pick], "o-", label="trained")
        if any(r["baseline"] is not None for r in pick):
            ax.plot(
                steps,
                [math.nan if r["baseline"] is None else r["baseline"] for r in pick],
                "s--",
                color="0.55",
                label="random-init",
            )
        floor = [r for r in rows if r["task"] == task and r.get("steps") is None]
        if floor:
            ax.axhline(floor[0]["value"], ls=":", color="black", label=floor[0]["metric"])
        ax.set_xscale("log", base=2)
        ax.set_xticks(steps, [str(s) for s in steps])
        ax.set_xlabel("sampling steps")
        if task == "frechet_distance":
            ax.set_ylabel("Fréchet distance (lower is better)")
            shown = (
                [r["value"] for r in pick]
                + [r["baseline"] for r in pick]
                + [r["value"] for r in floor]
            )
            if all(v is None or v > 0 for v in shown):
                ax.set_yscale("log")  # a random-init model is orders of magnitude away
        else:
            ax.set_ylabel("classifier accuracy (higher is better)")
            ax.set_ylim(0, 1.05)
        ax.legend(fontsize=8)
    fig.suptitle("sample quality vs sampling steps")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ----------------------------------------------------------------------------- the suite


def _generator_of(model: Any) -> Any:
    """What generates: a :class:`Run`'s recipe, or the object itself."""
    target = model.recipe if isinstance(model, Run) else model
    if not isinstance(target, ImageGenerator):
        missing = [m for m in ("sample", "sample_steps", "num_classes") if not hasattr(target, m)]
        raise BenchmarkError(
            f"generation: {type(target).__name__} is not an image generator (it lacks "
            f"{', '.join(missing)}); the suite needs the manyview.runs.ImageGenerator protocol: "
            "sample(n, *, steps, labels, generator) -> (n, C, H, W) in [0, 1], sample_steps, "
            "num_classes"
        )
    return target


def _draw(model: Any) -> Any:
    """``model``'s ``sample`` (a Run's handles eval mode and gradients itself)."""
    if isinstance(model, Run):
        return model.sample
    return torch.no_grad()(model.sample)


def _batches(dataset: Any, batch_size: int) -> Any:
    """``(images (B, C, H, W), labels (B,) or None)`` of a dataset, batch after batch."""
    from manyview.benchmarks.crossmodal import _collate

    for start in range(0, len(dataset), batch_size):
        batch = _collate(dataset, list(range(start, min(start + batch_size, len(dataset)))))
        if MODALITY not in batch:
            have = sorted(k for k in batch if k not in ("label", "index"))
            raise BenchmarkError(
                f"generation: the dataset's samples have no 'image' (they have {have})"
            )
        labels = batch.get("label")
        yield (
            torch.as_tensor(batch[MODALITY]).float(),
            None if labels is None else torch.as_tensor(labels).long().reshape(-1),
        )


def _split(model: Any, split: str) -> Any:
    try:
        dataset = model.dataset(split)
    except RunError as exc:
        raise BenchmarkError(f"generation: {exc}") from None
    if len(dataset) == 0:
        raise BenchmarkError(f"generation: the {split} split is empty")
    return dataset


def _steps(steps: Any, default: int) -> list[int]:
    if steps is None:
        steps = (*DEFAULT_STEPS, default)
    elif isinstance(steps, int | str):
        steps = [steps]
    out = []
    for k in steps:
        try:
            out.append(check_int(k, "steps", "generation"))
        except ValueError as exc:
            raise BenchmarkError(f"{exc} (a number of sampling steps, or a list of them)") from None
    if not out:
        raise BenchmarkError("generation: steps is empty; give at least one number of steps")
    return sorted(set(out))


def _sample_quality(
    draw: Any,
    classifier: ReferenceClassifier,
    labels: Tensor | None,
    shape: tuple[int, ...],
    *,
    n: int,
    steps: int,
    batch_size: int,
    device: torch.device,
    seed: int,
) -> tuple[Tensor, float | None, Tensor]:
    """``(features (n, 64) float64, accuracy or None, the first GRID_IMAGES samples)`` of
    ``n`` samples at ``steps`` steps, drawn ``batch_size`` at a time from one seeded
    generator; only the features and the grid's images are kept."""
    g = torch.Generator().manual_seed(seed)  # on the CPU: the same noise on any device
    features: list[Tensor] = []
    grid: list[Tensor] = []
    correct, kept = 0, 0
    for start in range(0, n, batch_size):
        m = min(batch_size, n - start)
        cond = None if labels is None else labels[start : start + m].to(device)
        x = draw(m, steps=steps, labels=cond, generator=g)
        if not isinstance(x, Tensor) or tuple(x.shape) != (m, *shape):
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise BenchmarkError(
                f"generation: sample({m}, steps={steps}) returned {got}; expected "
                f"{(m, *shape)}, the shape of the dataset's images"
            )
        x = x.detach().float()
        if not torch.isfinite(x).all():
            raise BenchmarkError(f"generation: sample(steps={steps}) returned non-finite values")
        lo, hi = float(x.min()), float(x.max())
        if lo < -1e-3 or hi > 1 + 1e-3:
            raise BenchmarkError(
                f"generation: sample(steps={steps}) returned values in [{lo:.3g}, {hi:.3g}]; "
                "the protocol asks for [0, 1] (clamp the images in sample)"
            )
        x = x.to(device).clamp_(0.0, 1.0)
        with torch.no_grad():
            z = classifier.features(x)
            features.append(z.double().cpu())
            if cond is not None:
                correct += int((classifier.head(z).argmax(1) == cond).sum())
        if kept < GRID_IMAGES:
            grid.append(x[: GRID_IMAGES - kept].cpu())
            kept += len(grid[-1])
    accuracy = None if labels is None else correct / n
    return torch.cat(features), accuracy, torch.cat(grid)


def run(
    model: Any,
    *,
    out: str | os.PathLike[str] | None = None,
    split: str = "test",
    steps: int | Sequence[int] | None = None,
    num_samples: int | None = None,
    batch_size: int = 256,
    device: str = "cpu",
    seed: int = 0,
    baseline: Any = True,
    cache: bool = True,
) -> dict[str, Any]:
    """Run the suite; return ``{"rows": [...], "meta": {...}, "files": [...]}``.

    Args:
        model: a :class:`manyview.Run` (or its directory) whose recipe follows the
            :class:`manyview.runs.ImageGenerator` protocol.
        out: where to write ``bench.json``, ``bench.md``, ``samples_steps{K}.png`` (the
            first 64 samples of each step count) and ``quality_vs_steps.png`` (None: nowhere).
        split: the real images the samples are compared with (``run.dataset(split)``).
        steps: the numbers of sampling steps (default: 1, 2, 4, 8 and the recipe's
            ``sample_steps``), deduplicated and sorted.
        num_samples: samples per step count (default: the split's size). A class-conditional
            model is given the split's labels in order (cycled), so the classes match.
        batch_size: samples drawn per ``sample`` call.
        device: where sampling and the reference classifier's features run.
        seed: the samples' generator (a CPU ``torch.Generator``, seeded afresh for every
            step count and for the baseline) and the reference classifier's training.
        baseline: also score ``run.baseline()`` (the random-init model) when the run kept
            its initial weights (``False`` or ``None``: do not).
        cache: keep the reference classifier's weights under the data root.
    """
    from manyview.runs import load_run

    meta: dict[str, Any] = {"suite": SUITE, "split": split, "modalities": [MODALITY]}
    if isinstance(model, str | os.PathLike):
        try:
            model = load_run(model, device=device)
        except RunError as exc:
            raise BenchmarkError(f"checkpoint: {exc}") from None
    generator = _generator_of(model)
    if not callable(getattr(model, "dataset", None)):
        raise BenchmarkError(
            f"generation: {type(model).__name__} has no dataset(split); give a manyview.Run"
        )
    try:
        batch_size = check_int(batch_size, "batch_size", "generation")
        seed = check_int(seed, "seed", "generation", least=0)
        if num_samples is not None:
            num_samples = check_int(num_samples, "num_samples", "generation", least=2)
        sample_steps = check_int(generator.sample_steps, "sample_steps", type(generator).__name__)
        device = torch.device(device)
    except (ValueError, RuntimeError) as exc:
        raise BenchmarkError(str(exc).strip().splitlines()[0]) from None
    step_counts = _steps(steps, sample_steps)
    num_classes = generator.num_classes
    if isinstance(model, Run):
        checkpoint = None if model.checkpoint is None else str(model.checkpoint)
        meta.update(checkpoint=checkpoint, run_dir=str(model.path))
        if isinstance(model.recipe, nn.Module):
            model.recipe.to(device)

    # the reference classifier, on the real train split
    train = _split(model, "train")
    chunk = max(batch_size, REAL_BATCH)
    parts = list(_batches(train, chunk))
    train_images = torch.cat([x for x, _ in parts])
    if any(y is None for _, y in parts):
        raise BenchmarkError(
            "generation: the train split's samples have no 'label'; the reference classifier "
            "is trained on the real images' classes"
        )
    train_labels = torch.cat([y for _, y in parts])
    del parts
    classes = getattr(train, "num_classes", None) or int(train_labels.max()) + 1
    classifier = reference_classifier(
        train_images, train_labels, num_classes=int(classes), seed=seed, cache=cache
    )
    classifier.to(device)
    with torch.no_grad():
        train_features = torch.cat(
            [classifier.features(x.to(device)).double().cpu() for x in train_images.split(chunk)]
        )
    del train_images

    # the real split: features, labels, and the classifier's own accuracy on it
    real = _split(model, split)
    real_features, real_labels, real_correct = [], [], 0
    with torch.no_grad():
        for x, y in _batches(real, chunk):
            z = classifier.features(x.to(device))
            real_features.append(z.double().cpu())
            if y is not None:
                real_labels.append(y)
                real_correct += int((classifier.head(z).argmax(1).cpu() == y).sum())
            shape = tuple(x.shape[1:])
    features = torch.cat(real_features)
    n_real = len(features)
    n = n_real if num_samples is None else num_samples
    labels = None
    if num_classes is not None:
        if not real_labels:
            raise BenchmarkError(
                f"generation: the model is class-conditional but the {split} split has no labels"
            )
        y = torch.cat(real_labels)
        if int(y.max()) >= int(num_classes):
            raise BenchmarkError(
                f"generation: the {split} split has labels up to {int(y.max())} but the model "
                f"has num_classes={num_classes}"
            )
        labels = y.repeat(math.ceil(n / len(y)))[:n]

    baseline_model = None
    if baseline is not None and baseline is not False:
        if not isinstance(model, Run) and not callable(getattr(model, "baseline", None)):
            meta["baseline"] = "none (the model has no baseline())"
        else:
            try:
                baseline_model = model.baseline()
                _generator_of(baseline_model)
                if isinstance(baseline_model, Run):
                    baseline_model.recipe.to(device)
            except RunError as exc:
                meta["baseline"] = f"none ({exc})"

    rows: list[dict[str, Any]] = []
    grids: dict[int, Tensor] = {}
    common = dict(n=n, batch_size=batch_size, device=device, seed=seed)
    for k in step_counts:
        z, acc, grids[k] = _sample_quality(
            _draw(model), classifier, labels, shape, steps=k, **common
        )
        fd = frechet_distance(z, features)
        base_fd = base_acc = None
        if baseline_model is not None:
            zb, base_acc, _ = _sample_quality(
                _draw(baseline_model), classifier, labels, shape, steps=k, **common
            )
            base_fd = frechet_distance(zb, features)
            del zb
        del z
        rows.append(_row("frechet_distance", f"steps={k}", fd, base_fd, k))
        if acc is not None:
            rows.append(_row("classifier_accuracy", f"steps={k}", acc, base_acc, k))
    rows.append(
        _row(
            "frechet_distance", f"real train vs {split}", frechet_distance(train_features, features)
        )
    )
    if labels is not None:
        rows.append(_row("classifier_accuracy", f"real {split} images", real_correct / n_real))
    meta.update(
        n_train=len(train_features),
        n_test=n_real,
        num_samples=n,
        steps=step_counts,
        sample_steps=sample_steps,
        num_classes=num_classes,
        class_conditional=num_classes is not None,
        reference_classifier={**classifier.architecture, "version": CLASSIFIER_VERSION},
    )
    result: dict[str, Any] = {"rows": rows, "meta": meta, "files": []}
    if out is not None:
        result["files"] = write_outputs(result, out, grids)
    return result


def _row(
    task: str, metric: str, value: float, baseline: float | None = None, steps: int | None = None
) -> dict[str, Any]:
    """One row of the benchmark schema, plus ``steps`` (``None`` for the real-data rows)."""
    return {
        "suite": SUITE,
        "task": task,
        "query": MODALITY,
        "target": None,
        "metric": metric,
        "value": float(value),
        "baseline": None if baseline is None else float(baseline),
        "steps": steps,
    }


def write_outputs(
    result: Mapping[str, Any], out: str | os.PathLike[str], grids: Mapping[int, Tensor]
) -> list[str]:
    """Write ``bench.json``, ``bench.md``, one ``samples_steps{K}.png`` per step count and
    ``quality_vs_steps.png``; return their paths."""
    from manyview.benchmarks import report

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(result["rows"], indent=1) + "\n")
    (out / "bench.md").write_text(report.markdown(result["rows"], result["meta"]))
    files = [out / "bench.json", out / "bench.md"]
    for k, images in grids.items():
        files.append(save_image_grid(images, out / f"samples_steps{k}.png", nrow=8))
    plot = plot_quality_vs_steps(result["rows"], out / "quality_vs_steps.png")
    if plot is not None:
        files.append(plot)
    return [str(f) for f in files]
