"""manyview: contrast and distil across any number of views and modalities.

The public surface of the core. Importing ``manyview`` does not import torch: the heavy
modules load when first used, e.g. by ``manyview.create("loss", "mv_dhel")``.
"""

from __future__ import annotations

import inspect
from typing import Any

from manyview.hookspecs import hookimpl
from manyview.lazy import lazy_exports
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
    did_you_mean,
    register_all,
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
    "lazy_exports",
    "load_run",
    "plugins",
    "register_all",
]


def available(kind: str) -> list[str]:
    """Sorted names registered for ``kind`` (one of :data:`KINDS`); a name two plugins
    registered is listed in its qualified forms ``"<distribution>:<name>"``."""
    return _registry().names(kind)


def entry(kind: str, name: str) -> Entry:
    """The registry entry for ``name``: its factory, plugin, summary, modality and metadata."""
    return _registry().get(kind, name)


def create(kind: str, name: str, /, **kwargs: Any) -> Any:
    """Build the ``kind`` registered as ``name`` (or ``"<distribution>:<name>"``) with ``kwargs``.

    Raises :class:`UnknownNameError` (with close matches) when nothing has that name,
    :class:`AmbiguousNameError` when several plugins registered it, and ``TypeError``
    naming the argument when ``kwargs`` does not fit the factory.
    """
    found = entry(kind, name)
    factory = found.load()
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # no signature (some builtins): let the call decide
        return factory(**kwargs)
    params = signature.parameters.values()
    accepted = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    wrong = [key for key in kwargs if key not in accepted]
    if wrong and not any(p.kind is p.VAR_KEYWORD for p in params):
        raise TypeError(
            f"{found.kind} {found.name!r} got an unexpected argument {wrong[0]!r}"
            f"{did_you_mean(wrong[0], accepted) or '.'} It accepts: {', '.join(accepted) or 'nothing'}"
        )
    try:
        signature.bind(**kwargs)
    except TypeError as exc:
        raise TypeError(f"{found.kind} {found.name!r}: {exc}") from None
    return factory(**kwargs)


_LAZY = {"load_run": "manyview.runs", "Run": "manyview.runs"}
"""``load_run`` and ``Run`` import torch, so they load on first use."""
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)[:2]
