"""The plugin manager: built-ins first, then entry points of group ``manyview``, one at a time.

A plugin that fails to import, fails pluggy's validation, or raises inside a registration
hook is recorded with its error (see :func:`plugins` and ``manyview plugins``) and skipped;
everything else keeps working. Nothing registered by a failing plugin is kept.

Environment:
    MANYVIEW_LOAD_PLUGINS: comma-separated allow-list of plugins (distribution or
        entry-point names) to load from entry points; set but empty loads none.
    MANYVIEW_DISABLE_PLUGINS: comma-separated block-list, applied after the allow-list.
Built-in plugins always load.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from manyview import hookspecs
from manyview.registry import HOOK_FOR_KIND, KINDS, Entry, Registry, make_entry

ENTRY_POINT_GROUP = "manyview"

DEFAULT_PLUGINS: tuple[str, ...] = (
    "manyview.default_plugins.losses",
    "manyview.default_plugins.distillation",
    "manyview.default_plugins.teachers",
    "manyview.default_plugins.views",
    "manyview.default_plugins.data",
)
"""Modules of the core's own built-ins; they register through the same hooks as any plugin."""

CORE_DISTRIBUTION = "manyview"


@dataclass
class PluginInfo:
    """What ``manyview plugins`` reports for one plugin.

    Attributes:
        name: the entry-point name (the module name for built-ins).
        distribution: the installed distribution that provides it.
        version: that distribution's version.
        module: what the entry point points to.
        status: ``"loaded"``, ``"failed"`` or ``"disabled"``.
        error: the error that made it fail, as ``"Type: message"``.
        registered: kind -> sorted names it registered.
        builtin: whether it is one of :data:`DEFAULT_PLUGINS`.
    """

    name: str
    distribution: str
    version: str
    module: str
    status: str = "loaded"
    error: str | None = None
    registered: dict[str, list[str]] = field(default_factory=dict)
    builtin: bool = False

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description (used by ``manyview plugins --json``)."""
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "module": self.module,
            "builtin": self.builtin,
            "status": self.status,
            "error": self.error,
            "registered": {k: v for k, v in self.registered.items() if v},
        }


@dataclass
class _State:
    pm: pluggy.PluginManager
    registry: Registry
    infos: list[PluginInfo]
    objects: dict[str, Any]  # plugin name -> registered plugin object


_state: _State | None = None
_lock = threading.Lock()


def _env_list(var: str) -> set[str] | None:
    raw = os.environ.get(var)
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def _format_error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _core_version() -> str:
    from manyview import __version__

    return __version__


def _entry_points() -> list[metadata.EntryPoint]:
    seen: set[tuple[str, str, str]] = set()
    out = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist is not None else ""
        key = (dist, ep.name, ep.value)
        if key not in seen:
            seen.add(key)
            out.append(ep)
    return sorted(out, key=lambda ep: ((ep.dist.name if ep.dist else ""), ep.name))


def _register_objects(pm: pluggy.PluginManager) -> tuple[list[PluginInfo], dict[str, Any]]:
    infos: list[PluginInfo] = []
    objects: dict[str, Any] = {}
    for module_name in DEFAULT_PLUGINS:
        info = PluginInfo(
            module_name, CORE_DISTRIBUTION, _core_version(), module_name, builtin=True
        )
        infos.append(info)
        try:
            module = importlib.import_module(module_name)
            pm.register(module, name=module_name)
            objects[module_name] = module
        except Exception as exc:  # a broken built-in is reported like any other plugin
            info.status, info.error = "failed", _format_error(exc)

    allow = _env_list("MANYVIEW_LOAD_PLUGINS")
    block = _env_list("MANYVIEW_DISABLE_PLUGINS") or set()
    for ep in _entry_points():
        dist = ep.dist.name if ep.dist is not None else ep.name
        version = ep.dist.version if ep.dist is not None else "unknown"
        info = PluginInfo(ep.name, dist, version, ep.value)
        infos.append(info)
        names = {ep.name, dist}
        if (allow is not None and not names & allow) or names & block:
            info.status = "disabled"
            continue
        if ep.name in objects:
            info.status = "failed"
            info.error = f"another plugin is already registered under the name {ep.name!r}"
            continue
        try:
            obj = ep.load()
            pm.register(obj, name=ep.name)
            objects[ep.name] = obj
        except BaseException as exc:  # ImportError, SystemExit in a plugin, bad hookimpls...
            if isinstance(exc, KeyboardInterrupt):
                raise
            info.status, info.error = "failed", _format_error(exc)
    return infos, objects


def _make_register(kind: str, plugin: str, staged: list[Entry]) -> Callable[..., None]:
    def register(name: str, factory: Callable[..., Any] | str, **meta: Any) -> None:
        staged.append(make_entry(kind, name, factory, plugin, **meta))

    return register


def _collect(
    pm: pluggy.PluginManager, infos: list[PluginInfo], objects: dict[str, Any], registry: Registry
) -> None:
    """Call each plugin's registration hooks on its own, so one failure stays contained.

    A plugin's entries are added only once all its hooks have run without error.
    """
    impls_by_kind = {
        kind: getattr(pm.hook, hook).get_hookimpls() for kind, hook in HOOK_FOR_KIND.items()
    }
    for info in infos:
        if info.status != "loaded":
            continue
        plugin_obj = objects[info.name]
        staged: list[Entry] = []
        try:
            for kind in KINDS:
                register = _make_register(kind, info.distribution, staged)
                for impl in impls_by_kind[kind]:
                    if impl.plugin is plugin_obj:
                        impl.function(**{arg: register for arg in impl.argnames})
            seen = set()
            for entry in staged:
                key = (entry.kind, entry.name)
                if key in seen or registry.has(entry.kind, entry.name, entry.plugin):
                    raise ValueError(
                        f"{entry.kind} {entry.name!r} is registered twice by {entry.plugin!r}"
                    )
                seen.add(key)
        except Exception as exc:
            info.status, info.error = "failed", _format_error(exc)
            continue
        info.registered = {kind: [] for kind in KINDS}
        for entry in staged:
            registry.add(entry)
            info.registered[entry.kind].append(entry.name)
        for names in info.registered.values():
            names.sort()


def _get_state() -> _State:
    global _state
    if _state is None:
        with _lock:
            if _state is None:
                pm = pluggy.PluginManager("manyview")
                pm.add_hookspecs(hookspecs)
                infos, objects = _register_objects(pm)
                reg = Registry()
                _collect(pm, infos, objects, reg)
                _state = _State(pm, reg, infos, objects)
    return _state


def reload() -> None:
    """Forget what was loaded; the next lookup loads built-ins and entry points again."""
    global _state
    with _lock:
        _state = None


def registry() -> Registry:
    """The registry of everything the loaded plugins registered."""
    return _get_state().registry


def plugin_manager() -> pluggy.PluginManager:
    """The pluggy manager; ``plugin_manager().hook.manyview_step_end(...)`` calls lifecycle hooks."""
    return _get_state().pm


def plugins() -> list[PluginInfo]:
    """Every plugin that was found: built-ins first, then entry points by distribution."""
    return list(_get_state().infos)


def register_plugin(
    obj: Any, name: str | None = None, distribution: str = "__main__"
) -> PluginInfo:
    """Register an in-process plugin object (a module or an instance with hookimpls).

    Useful in notebooks and tests. Its registrations are collected at once and added to
    the registry; an error is recorded on the returned :class:`PluginInfo` as for any plugin.
    """
    state = _get_state()
    name = name or getattr(obj, "__name__", None) or type(obj).__name__
    info = PluginInfo(name, distribution, "0", repr(obj))
    try:
        state.pm.register(obj, name=name)
        state.objects[name] = obj
    except Exception as exc:
        info.status, info.error = "failed", _format_error(exc)
        state.infos.append(info)
        return info
    state.infos.append(info)
    _collect(state.pm, [info], state.objects, state.registry)
    return info


def unregister_plugin(name: str) -> None:
    """Undo :func:`register_plugin` (and drop what it registered)."""
    state = _get_state()
    obj = state.objects.pop(name, None)
    if obj is not None:
        state.pm.unregister(obj)
    for info in [i for i in state.infos if i.name == name]:
        state.infos.remove(info)
        for kind, names in info.registered.items():
            for entry_name in names:
                state.registry.remove(kind, entry_name, info.distribution)
