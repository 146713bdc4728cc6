"""manyview: contrast and distil across any number of views and modalities.

The public surface of the core. Importing ``manyview`` does not import torch: the heavy
modules (losses, views, metrics, training) load when first used.

>>> import manyview
>>> manyview.available("loss")[:3]  # doctest: +SKIP
['clip', 'dcl', 'dclw']
>>> loss = manyview.create("loss", "mv_dhel", temperature=0.1)  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
from typing import Any

from manyview.hookspecs import hookimpl
from manyview.manager import PluginInfo, plugins
from manyview.manager import registry as _registry
from manyview.registry import (
    KINDS,
    AmbiguousNameError,
    Entry,
    FactoryLoadError,
    RegistryError,
    UnknownKindError,
    UnknownNameError,
    _suggest,
    did_you_mean,
)

__version__ = "0.1.0"

__all__ = [
    "KINDS",
    "AmbiguousNameError",
    "Entry",
    "FactoryLoadError",
    "PluginInfo",
    "RegistryError",
    "UnknownKindError",
    "UnknownNameError",
    "__version__",
    "available",
    "create",
    "did_you_mean",
    "entry",
    "hookimpl",
    "load_run",
    "plugins",
]


def available(kind: str) -> list[str]:
    """Sorted names registered for ``kind`` ("view", "encoder", "teacher", "loss",
    "dataset", "benchmark" or "recipe"). A name two plugins registered is listed in its
    qualified forms ``"<distribution>:<name>"``."""
    return _registry().names(kind)


def entry(kind: str, name: str) -> Entry:
    """The registry entry for ``name``: its factory, plugin, summary, modality and metadata."""
    return _registry().get(kind, name)


def create(kind: str, name: str, /, **kwargs: Any) -> Any:
    """Build the ``kind`` registered as ``name`` with the given keyword arguments.

    Args:
        kind: one of :data:`KINDS` (plurals such as ``"losses"`` are accepted).
        name: a registered name, or ``"<distribution>:<name>"`` to pick one plugin's.
        **kwargs: passed to the factory.

    Raises:
        UnknownNameError: with close-match suggestions, when nothing has that name.
        AmbiguousNameError: when several plugins registered it (use the qualified form).
        TypeError: naming the argument, when ``kwargs`` does not fit the factory.
    """
    found = entry(kind, name)
    factory = found.load()
    _check_arguments(found, factory, kwargs)
    return factory(**kwargs)


def _check_arguments(found: Entry, factory: Any, kwargs: dict[str, Any]) -> None:
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # builtins without a signature: let the call decide
        return
    params = signature.parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = [
        n
        for n, p in params.items()
        if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    for key in kwargs:
        if key not in accepted:
            raise TypeError(
                f"{found.kind} {found.name!r} got an unexpected argument {key!r}"
                f"{_suggest(key, accepted) or '.'} It accepts: {', '.join(accepted) or 'nothing'}"
            )
    try:
        signature.bind(**kwargs)
    except TypeError as exc:
        raise TypeError(f"{found.kind} {found.name!r}: {exc}") from None


def __getattr__(name: str) -> Any:
    # torch-heavy names load on first use, so `import manyview` stays light
    if name in ("load_run", "Run"):
        from manyview import runs

        return getattr(runs, name)
    raise AttributeError(f"module 'manyview' has no attribute {name!r}")
