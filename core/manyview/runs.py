"""Trained runs as objects: a run directory rebuilt into its recipe with its weights.

A run directory holds ``config.toml`` and ``checkpoints/step-K/model.safetensors`` (see
``docs/training.md``). :func:`load_run` rebuilds the recipe the configuration describes,
seeded as the trainer seeds it, and loads the newest checkpoint's model weights: the
result is a :class:`Run`, which implements the *embedder* protocol every benchmark uses —
``run.modalities`` and ``run.encode(modality, inputs) -> (N, D)`` — and keeps the untrained
twin for side-by-side scores (``run.baseline()``). A run whose recipe generates images
(the *image generator* protocol, :class:`ImageGenerator`) draws them with ``run.sample(n)``.

Python::

    import manyview

    run = manyview.load_run("runs/my-run")
    z = run.encode("image", images)   # (N, D), eval mode, no gradients
    x = run.sample(16, steps=4)       # (16, C, H, W) in [0, 1], from a generating recipe
"""

from __future__ import annotations

import copy
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

__all__ = [
    "Embedder",
    "ImageGenerator",
    "Run",
    "RunEncoder",
    "RunError",
    "load_run",
    "make_dataset",
    "seed_all",
]


class RunError(ValueError):
    """A run directory cannot be loaded; the message says which file and why."""


@runtime_checkable
class Embedder(Protocol):
    """What a benchmark needs of a model: the modalities it embeds and their embeddings.

    ``encode(modality, inputs)`` takes a collated batch of raw inputs of one modality (the
    dataset's samples, no training views) and returns ``(N, D)`` floating-point embeddings.
    A :class:`Run` is one; so is every recipe (see :class:`manyview.recipes.Recipe`); so is
    any object of another library with these two members.
    """

    @property
    def modalities(self) -> tuple[str, ...]: ...

    def encode(self, modality: str, inputs: Any) -> Tensor: ...


@runtime_checkable
class ImageGenerator(Protocol):
    """What a generation benchmark needs of a model that makes images.

    ``sample(n, *, steps=None, labels=None, generator=None)`` returns ``(n, C, H, W)``
    float32 images in [0, 1] (the range of the core's image datasets) on the model's device;
    ``steps`` is the number of sampling steps (``None``: ``sample_steps``, its default),
    ``labels`` the ``(n,)`` integer classes to condition on when ``num_classes`` is not
    ``None`` (a class-conditional model; ``None`` then draws classes itself), and
    ``generator`` the ``torch.Generator`` every random draw comes from, so that one seed gives
    the same images (the ``generation`` benchmark passes a CPU generator: draw the noise on
    it and move it to the model's device). A recipe with these three members is one; a :class:`Run` delegates
    :meth:`Run.sample` to its recipe.
    """

    sample_steps: int
    num_classes: int | None

    def sample(
        self,
        n: int,
        *,
        steps: int | None = None,
        labels: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor: ...


def seed_all(seed: int) -> None:
    """Seed Python's, torch's and numpy's global generators (as the trainer does)."""
    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:  # pragma: no cover - numpy is a dependency
        pass


def make_dataset(data: Mapping[str, Any], split: str | None = None) -> Any:
    """The ``[data]`` table's dataset (with ``split=`` when given), or a RunError."""
    import manyview

    options = dict(data["options"])
    if split is not None:
        options["split"] = split
    try:
        return manyview.create("dataset", data["name"], **options)
    except TypeError as exc:
        raise RunError(f"dataset {data['name']!r} cannot make the {split!r} split: {exc}") from None
    except (LookupError, ValueError) as exc:
        where = f" ({split!r} split)" if split else ""
        raise RunError(f"dataset {data['name']!r}{where}: {exc}") from None


class Run:
    """A trained run: its rebuilt recipe with the checkpoint's model weights.

    Attributes:
        recipe: the recipe (an ``nn.Module``), trained weights loaded.
        config: the run's resolved configuration.
        path: the run directory.
        checkpoint: the checkpoint directory the weights came from.
    """

    def __init__(
        self,
        recipe: nn.Module,
        config: Mapping[str, Any],
        path: Path,
        checkpoint: Path | None,
        initial: Mapping[str, Tensor] | None = None,
    ) -> None:
        self.recipe, self.config, self.path, self.checkpoint = recipe, config, path, checkpoint
        self._initial = initial

    @property
    def modalities(self) -> tuple[str, ...]:
        """The modalities the recipe embeds (none for a recipe that only generates)."""
        return tuple(getattr(self.recipe, "modalities", ()))

    @torch.no_grad()
    def encode(self, modality: str, inputs: Any) -> Tensor:
        """``(N, D)`` embeddings of raw inputs of ``modality``, in eval mode without
        gradients (the recipe's modes are restored afterwards)."""
        if modality not in self.modalities:
            raise RunError(
                f"run {self.path} has no encoder for {modality!r} (it embeds {list(self.modalities)})"
            )
        modes = [(m, m.training) for m in self.recipe.modules()]
        self.recipe.eval()
        try:
            return self.recipe.encode(modality, inputs)
        finally:
            for module, mode in modes:
                module.train(mode)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        steps: int | None = None,
        labels: Tensor | None = None,
        generator: torch.Generator | None = None,
        **options: Any,
    ) -> Tensor:
        """``(n, C, H, W)`` images in [0, 1] from the recipe's ``sample`` (the
        :class:`ImageGenerator` protocol), in eval mode without gradients (the recipe's
        modes are restored afterwards). ``options`` are the recipe's own sampling options
        (e.g. ``guidance``), passed through."""
        sample = getattr(self.recipe, "sample", None)
        if not callable(sample):
            raise RunError(
                f"run {self.path}: its recipe {type(self.recipe).__name__} does not generate "
                "images (it has no sample(n, *, steps, labels, generator); see "
                "manyview.runs.ImageGenerator)"
            )
        modes = [(m, m.training) for m in self.recipe.modules()]
        self.recipe.eval()
        try:
            return sample(n, steps=steps, labels=labels, generator=generator, **options)
        finally:
            for module, mode in modes:
                module.train(mode)

    def dataset(self, split: str | None = None) -> Any:
        """The run's ``[data]`` dataset, with ``split=`` when given."""
        return make_dataset(self.config["data"], split)

    def baseline(self) -> Run:
        """The same recipe at its initial (random) weights: what training started from."""
        if self._initial is None:
            raise RunError(f"run {self.path}: its initial weights were not kept")
        recipe = copy.deepcopy(self.recipe)
        recipe.model.load_state_dict(self._initial)
        return Run(recipe, self.config, self.path, None, self._initial)

    def to(self, device: str | torch.device) -> Run:
        self.recipe.to(device)
        return self

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, modalities={list(self.modalities)})"


class RunEncoder(nn.Module):
    """A frozen module that embeds one modality with a trained run (for teachers)."""

    def __init__(self, run: Run, modality: str) -> None:
        super().__init__()
        if modality not in run.modalities:
            raise RunError(
                f"run {run.path} has no encoder for {modality!r} (it embeds {list(run.modalities)})"
            )
        self.recipe = run.recipe.requires_grad_(False).eval()
        self.modality = modality

    def forward(self, inputs: Any) -> Tensor:
        return self.recipe.encode(self.modality, inputs)


def load_run(path: str | Path, *, device: str | torch.device = "cpu") -> Run:
    """Rebuild a run from its directory (``config.toml`` plus the newest checkpoint, or the
    checkpoint step directory given), its recipe seeded as the trainer seeds it.

    Raises:
        RunError: the directory, its configuration or its checkpoint cannot be used.
    """
    import manyview
    from manyview.config import ConfigError, load_config
    from manyview.training.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint

    run_dir = Path(path)
    if not run_dir.is_dir():
        raise RunError(f"{run_dir} is not a directory (give a run directory)")
    checkpoint = None
    if (run_dir / "model.safetensors").is_file():  # a step directory was given
        checkpoint, run_dir = run_dir, run_dir.parent.parent
    if not (run_dir / "config.toml").is_file():
        raise RunError(f"{run_dir} has no config.toml (is it a run directory?)")
    if checkpoint is None:
        checkpoint = latest_checkpoint(run_dir / "checkpoints")
        if checkpoint is None:
            raise RunError(f"{run_dir} has no complete checkpoint (checkpoints/step-K/)")
    try:
        config = load_config(run_dir / "config.toml")
        weights, _ = load_checkpoint(checkpoint)
        seed_all(int(config["run"]["seed"]))  # as the trainer does before building
        dataset = make_dataset(config["data"])
        factory = manyview.entry("recipe", config["run"]["recipe"]).load()
        recipe = factory(config, dataset)
    except (ConfigError, CheckpointError, LookupError) as exc:
        raise RunError(f"run {run_dir}: {exc}") from None
    initial = {k: v.detach().clone() for k, v in recipe.model.state_dict().items()}
    try:
        recipe.model.load_state_dict(weights)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise RunError(
            f"checkpoint {checkpoint} does not fit the model its config.toml builds ({first}); "
            "was the configuration or a plugin changed?"
        ) from None
    return Run(recipe.to(device).eval(), config, run_dir, Path(checkpoint), initial)
