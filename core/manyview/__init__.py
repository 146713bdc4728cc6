"""manyview: contrast and distil across any number of views and modalities.

The public surface of the core. Importing ``manyview`` does not import torch: the heavy
modules load when first used, e.g. by ``manyview.create("loss", "mv_dhel")``.
"""

from __future__ import annotations

import inspect
import re
import sys
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
    "Embedder",
    "Entry",
    "FactoryLoadError",
    "FactoryResultError",
    "ImageGenerator",
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
    :class:`AmbiguousNameError` when several plugins registered it, ``TypeError`` naming the
    argument when ``kwargs`` does not fit the factory (an unknown option, with a close match;
    a bool, int or float option of the wrong type, :func:`manyview.options.check_option_types`),
    and :class:`FactoryResultError` naming the plugin when the factory is not callable,
    returns ``None``, or (kind ``loss``) makes something that is not an ``nn.Module``.
    """
    from manyview.options import check_option_types

    found = entry(kind, name)
    factory = found.load()
    if not callable(factory):
        raise FactoryResultError(
            f"{found.kind} {found.name!r} from plugin {found.plugin!r}: its factory "
            f"{_where(found)} is a {type(factory).__name__}, not a class or function; fix "
            f"that plugin's registration, or disable it with MANYVIEW_DISABLE_PLUGINS={found.plugin}"
        )
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # no signature (some builtins): let the call decide
        return _checked(found, factory(**kwargs))
    params = signature.parameters.values()
    accepted = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    wrong = [key for key in kwargs if key not in accepted]
    if wrong and not any(p.kind is p.VAR_KEYWORD for p in params):
        raise TypeError(
            f"{found.kind} {found.name!r} got an unexpected argument {wrong[0]!r}"
            f"{did_you_mean(wrong[0], accepted) or '.'} It accepts: {', '.join(accepted) or 'nothing'}"
        )
    check_option_types(factory, kwargs, f"{found.kind} {found.name!r}")
    try:
        signature.bind(**kwargs)
    except TypeError as exc:
        raise TypeError(f"{found.kind} {found.name!r}: {exc}") from None
    if not any(p.kind is p.VAR_KEYWORD for p in params):
        return _checked(found, factory(**kwargs))
    try:  # **kwargs passed on (to a base class, a library): its refusal gets a suggestion
        made = factory(**kwargs)
    except TypeError as exc:
        match = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
        if match is None or match.group(1) not in kwargs:
            raise
        raise TypeError(
            f"{found.kind} {found.name!r} got an unexpected argument {match.group(1)!r}"
            f"{did_you_mean(match.group(1), accepted) or '.'} ({exc}) It accepts: "
            f"{', '.join(accepted)} and the options of what it passes the rest to"
        ) from None
    return _checked(found, made)


class FactoryResultError(RegistryError, TypeError):
    """A registered factory is not callable, returned ``None``, or made a loss that is not
    an ``nn.Module``; the message names the plugin and the factory."""


def _where(found: Entry) -> str:
    f = found.factory
    return (
        repr(f)
        if isinstance(f, str)
        else f"{getattr(f, '__module__', '?')}:{getattr(f, '__qualname__', type(f).__qualname__)}"
    )


def _checked(found: Entry, made: Any) -> Any:
    """``made`` if it is a usable result of ``found``'s factory, else a one-line error."""
    where = f"{found.kind} {found.name!r} from plugin {found.plugin!r} (factory {_where(found)})"
    if made is None:
        raise FactoryResultError(f"{where} returned None; its factory must return the {found.kind}")
    if found.kind == "loss":
        nn = sys.modules.get("torch.nn")  # without torch loaded, nothing is an nn.Module
        if nn is None or not isinstance(made, nn.Module):
            raise FactoryResultError(
                f"{where} made a {type(made).__name__}, not a torch.nn.Module; a loss must be "
                "an nn.Module (subclass manyview.losses.MultiViewLoss or "
                "manyview.distill.DistillationLoss)"
            )
    if found.kind == "view" and sys.modules.get("torch.nn") is not None:
        from manyview.views.checks import add_view_checks

        made = add_view_checks(made)  # generator= and meta-device checks for every view
    return made


_LAZY = {
    "load_run": "manyview.runs",
    "Run": "manyview.runs",
    "Embedder": "manyview.runs",
    "ImageGenerator": "manyview.runs",
}
"""``load_run``, ``Run`` and the embedder and image generator protocols import torch, so
they load on first use."""
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)[:2]
