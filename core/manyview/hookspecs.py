"""The hooks a manyview plugin can implement (pluggy project ``manyview``).

A registration hook receives ``register(name, factory, **meta)``; call it once per thing the
plugin adds. ``factory`` is a class or function that :func:`manyview.create` calls with the
user's keyword arguments, or a ``"module:attr"`` string imported only when used (keeps
``manyview list`` fast). ``meta`` takes ``summary=`` (one line; default: the first line of
the factory's docstring), ``modality=`` (required for views, encoders and readers) and any
further metadata, kept on the entry. The trainer calls the lifecycle hooks, each plugin on
its own (:func:`manyview.manager.call_hook`).
"""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("manyview")
hookimpl = pluggy.HookimplMarker("manyview")


@hookspec
def manyview_register_views(register: Any) -> None:
    """Register views: transforms that make one look at one modality of a batch."""


@hookspec
def manyview_register_encoders(register: Any) -> None:
    """Register encoders: modules from one modality's batch to features (N, F)."""


@hookspec
def manyview_register_teachers(register: Any) -> None:
    """Register teachers: modules that make targets and may update themselves."""


@hookspec
def manyview_register_losses(register: Any) -> None:
    """Register losses: modules over M views (N, M, D) that return a 0-dim tensor."""


@hookspec
def manyview_register_datasets(register: Any) -> None:
    """Register datasets: named sources of samples of one or more modalities."""


@hookspec
def manyview_register_benchmarks(register: Any) -> None:
    """Register benchmarks: evaluations on embeddings."""


@hookspec
def manyview_register_recipes(register: Any) -> None:
    """Register recipes: ready compositions of views, encoders, teacher and losses."""


@hookspec
def manyview_register_configs(register: Any) -> None:
    """Register configurations: named runs whose factory returns the ``Path`` of a TOML file."""


@hookspec
def manyview_register_readers(register: Any) -> None:
    """Register readers: factories of one modality's file decoders (``path -> data``)."""


@hookspec
def manyview_register_commands(register: Any) -> None:
    """Register CLI commands: ``register(name, run, *, help=None, configure=None)``."""


@hookspec
def manyview_train_start(trainer: Any) -> None:
    """Called once before the first training step."""


@hookspec
def manyview_step_end(trainer: Any, step: int, metrics: dict[str, float]) -> None:
    """Called after each optimizer step with that step's logged metrics."""


@hookspec
def manyview_checkpoint_saved(trainer: Any, path: str) -> None:
    """Called after a checkpoint has been written atomically to ``path``."""


@hookspec
def manyview_train_end(trainer: Any) -> None:
    """Called once after the last training step (also after an interrupt)."""
