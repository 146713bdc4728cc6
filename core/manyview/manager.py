"""The plugin manager: the built-ins, then entry points of group ``manyview``, one at a time.

A plugin that fails to import, fails pluggy's validation, or raises inside a registration
hook is recorded with its error (``manyview plugins``) and unregistered; nothing it
registered is kept. ``MANYVIEW_DISABLE_PLUGINS`` (comma-separated plugin or distribution
names) disables plugins, built-ins included; ``MANYVIEW_LOAD_PLUGINS``, when set, loads only
the entry points it names (set but empty: none), and the built-ins stay unless disabled.

Commands registered through ``manyview_register_commands`` (:class:`Command`) are kept on
their plugin's :class:`PluginInfo`; one whose name a built-in command or an earlier plugin
already has is refused with a warning on that plugin (``manyview plugins``), and the rest
of the plugin loads.
"""

from __future__ import annotations

import os
import pkgutil
import re
import sys
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from functools import partial
from importlib import import_module, metadata
from typing import Any

import pluggy

from manyview import hookspecs
from manyview.registry import HOOK_FOR_KIND, Entry, Factory, Registry, did_you_mean, make_entry

BUILTINS = tuple(f"manyview.{m}" for m in ("losses", "distillation", "teachers", "views", "data"))
"""The built-in plugins; ``manyview.<x>`` is the module ``manyview.default_plugins.<x>``."""


_COMMAND_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class Command:
    """One ``manyview NAME`` subcommand a plugin registered through ``manyview_register_commands``.

    ``run(args: argparse.Namespace) -> int | None`` runs it (``None`` is exit status 0);
    ``configure(parser: argparse.ArgumentParser) -> None`` adds its arguments. Either may be
    a ``"module:attr"`` string, imported only when that command is parsed or run, so
    ``manyview --help`` imports neither. ``help`` is its line in ``manyview --help``.
    """

    name: str
    run: Callable[..., Any] | str
    plugin: str  # the pluggy name of the plugin that registered it
    distribution: str
    help: str = ""
    configure: Callable[..., Any] | str | None = None

    def load_run(self) -> Callable[..., Any]:
        """``run``, imported first when it was registered as a string."""
        return self._load(self.run, "run")

    def load_configure(self) -> Callable[..., Any] | None:
        """``configure`` (``None`` when the command takes no arguments), imported if a string."""
        return None if self.configure is None else self._load(self.configure, "configure")

    def _load(self, what: Callable[..., Any] | str, role: str) -> Callable[..., Any]:
        if not isinstance(what, str):
            return what
        try:
            return pkgutil.resolve_name(what)
        except Exception as exc:
            raise ImportError(
                f"command {self.name!r} of plugin {self.plugin!r} could not load its {role} "
                f"from {what!r}: {_why(exc)}. Reinstall or update that plugin, or disable it "
                f"with MANYVIEW_DISABLE_PLUGINS={self.plugin}"
            ) from exc


@dataclass
class PluginInfo:
    """One plugin as ``manyview plugins`` shows it; ``registered`` maps kind -> sorted names."""

    name: str  # its pluggy name: the entry point's, or manyview.<x> for a built-in
    distribution: str
    version: str
    module: str  # what it was loaded from
    status: str = "loaded"  # or "failed" (then error is "Type: message") or "disabled"
    error: str | None = None
    registered: dict[str, list[str]] = field(default_factory=dict)
    builtin: bool = False
    warnings: list[str] = field(default_factory=list)  # e.g. a command refused for its name
    entries: list[Entry] = field(default_factory=list, repr=False)
    commands: list[Command] = field(default_factory=list, repr=False)

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description (``manyview plugins --json``)."""
        hidden = ("entries", "commands")
        return {key: value for key, value in vars(self).items() if key not in hidden}


_loaded: tuple[pluggy.PluginManager, list[PluginInfo]] | None = None
_lock = threading.RLock()


def _names(var: str) -> set[str] | None:
    """The comma-separated names in environment variable ``var`` (``None`` when unset)."""
    raw = os.environ.get(var)
    return None if raw is None else {part.strip() for part in raw.split(",") if part.strip()}


def _state() -> tuple[pluggy.PluginManager, list[PluginInfo]]:
    """The pluggy manager and every plugin found, loaded on first use."""
    global _loaded
    with _lock:
        if _loaded is None:
            from manyview import __version__

            _loaded = (pm := pluggy.PluginManager("manyview"), [])
            pm.add_hookspecs(hookspecs)
            allow = _names("MANYVIEW_LOAD_PLUGINS")  # entry points only
            block = _names("MANYVIEW_DISABLE_PLUGINS") or set()
            for name in block:  # pluggy then refuses plugins of that name
                pm.set_blocked(name)
            for name in BUILTINS:
                module = name.replace("manyview.", "manyview.default_plugins.")
                info = PluginInfo(name, "manyview", __version__, module, builtin=True)
                _add(info, partial(import_module, module), "manyview" in block)
            found = {
                (ep.dist.name if ep.dist else ep.name, ep.name): ep
                for ep in metadata.entry_points(group="manyview")
            }
            for (dist, name), ep in sorted(found.items()):
                info = PluginInfo(name, dist, ep.dist.version if ep.dist else "unknown", ep.value)
                _add(info, ep.load, dist in block or not (allow is None or {name, dist} & allow))
            known = {"manyview", *BUILTINS, *(n for key in found for n in key)}
            _warn_unknown("MANYVIEW_DISABLE_PLUGINS", block, known)
            _warn_unknown("MANYVIEW_LOAD_PLUGINS", allow or set(), known - {"manyview", *BUILTINS})
        return _loaded


def _warn_unknown(var: str, names: set[str], known: set[str]) -> None:
    """One line on stderr for each name in ``var`` that is no plugin or distribution found."""
    for name in sorted(names - known):
        if name == "manyview" or name in BUILTINS:
            why = (
                "a built-in: the built-ins load unless MANYVIEW_DISABLE_PLUGINS names them; "
                f"{var} picks entry points only"
            )
        else:
            hint = did_you_mean(name, sorted(known)) or "; no name is close"
            why = f"no installed plugin or distribution{hint} (`manyview plugins` lists them)"
        print(f"manyview: {var} names {name!r}, which is {why}", file=sys.stderr)


def _add(info: PluginInfo, load: Callable[[], Any], disabled: bool = False) -> PluginInfo:
    """Register one plugin; keep its entries only if all its registration hooks succeed."""
    pm, infos = _state()
    infos.append(info)
    if disabled or pm.is_blocked(info.name):
        info.status = "disabled"
        return info
    obj, staged, commands = None, [], []
    try:
        if pm.has_plugin(info.name):
            raise ValueError(f"another plugin is already registered as {info.name!r}; rename one")
        pm.register(obj := load(), name=info.name)
        for kind, hook in HOOK_FOR_KIND.items():
            register = partial(_stage, staged, kind, info.distribution)
            if failures := call_hook(hook, plugin=info.name, register=register):
                raise failures[0][1]
        register = partial(_stage_command, commands, info)
        if failures := call_hook("manyview_register_commands", plugin=info.name, register=register):
            raise failures[0][1]
        taken = {(e.kind, e.name, e.plugin) for i in infos for e in i.entries}
        for e in staged:
            if (key := (e.kind, e.name, e.plugin)) in taken:
                raise ValueError(f"{e.kind} {e.name!r} is registered twice by {e.plugin!r}")
            taken.add(key)
    except BaseException as exc:  # ImportError, SystemExit in a plugin, bad hookimpls...
        if isinstance(exc, KeyboardInterrupt):
            raise
        info.status, info.error = "failed", " ".join(f"{type(exc).__name__}: {exc}".split())
        if obj is not None and pm.get_plugin(info.name) is obj:
            pm.unregister(name=info.name)
        return info
    info.entries = staged
    for kind in dict.fromkeys(e.kind for e in staged):  # in the order of KINDS
        info.registered[kind] = sorted(e.name for e in staged if e.kind == kind)
    _accept_commands(info, commands, infos)
    return info


def _stage_command(
    staged: list[Command],
    info: PluginInfo,
    name: str,
    run: Callable[..., Any] | str,
    *,
    help: str | None = None,
    configure: Callable[..., Any] | str | None = None,
) -> None:
    """The ``register(name, run, *, help=None, configure=None)`` of ``manyview_register_commands``."""
    if not isinstance(name, str) or not _COMMAND_NAME.fullmatch(name):
        raise ValueError(
            f"command name {name!r} is not valid: use letters, digits, '-', '_' or '.', "
            "starting with a letter or digit"
        )
    for role, what in (("run", run), ("configure", configure)):
        if what is None and role == "configure":
            continue
        if isinstance(what, str) and ":" not in what:
            raise ValueError(f"command {name!r}: {role} {what!r} must be 'package.module:attr'")
        if not isinstance(what, str | Callable):
            raise TypeError(f"command {name!r}: {role} must be a function or 'module:attr'")
    if help is None:
        doc = "" if isinstance(run, str) else (getattr(run, "__doc__", None) or "").strip()
        help = doc.splitlines()[0].strip() if doc else ""
    if not isinstance(help, str):
        raise TypeError(f"command {name!r}: help must be a string (one line)")
    if any(c.name == name for c in staged):
        raise ValueError(f"command {name!r} is registered twice by {info.name!r}")
    staged.append(Command(name, run, info.name, info.distribution, help, configure))


def _accept_commands(info: PluginInfo, staged: list[Command], infos: list[PluginInfo]) -> None:
    """Keep the commands of ``info`` whose names are free; refuse the others with a warning."""
    from manyview.cli import BUILTIN_COMMANDS

    holders = {c.name: i.name for i in infos if i is not info for c in i.commands}
    for command in staged:
        if command.name in BUILTIN_COMMANDS:
            why = f"a built-in command has that name (`manyview {command.name}` stays the built-in)"
            fix = "rename the plugin's command"
        elif command.name in holders:
            why = f"plugin {holders[command.name]!r} registered it first (and keeps it)"
            fix = "rename one, or disable one with MANYVIEW_DISABLE_PLUGINS"
        else:
            info.commands.append(command)
            continue
        info.warnings.append(f"command {command.name!r} refused: {why}; {fix}")
    if info.commands:
        info.registered["command"] = sorted(c.name for c in info.commands)


def _stage(
    staged: list[Entry], kind: str, plugin: str, name: str, factory: Factory, **meta: Any
) -> None:
    """The ``register(name, factory, **meta)`` that a registration hook receives."""
    staged.append(make_entry(kind, name, factory, plugin, **meta))


def call_hook(
    name: str,
    /,
    *,
    plugin: str | None = None,
    reported: set[str] | None = None,
    contain_exits: bool = False,
    skip: Collection[str] = (),
    **kwargs: Any,
) -> list[tuple[str, BaseException]]:
    """Call hook ``name`` with ``kwargs`` once per plugin that implements it, on its own.

    Each call goes through ``subset_hook_caller``, in pluggy's order (``tryfirst``/``trylast``
    kept, hook wrappers wrapping each plugin's call), so pluggy's tracing and monitoring see
    it; a plugin that raises does not stop the others. An ``Exception`` or a ``SystemExit``
    (a plugin calling ``sys.exit``) is the plugin's failure; so is a ``KeyboardInterrupt``
    with ``contain_exits=True`` (the trainer, whose own Ctrl-C handler stops the run
    cleanly, passes it: an interrupt raised inside a hook then comes from the plugin).
    ``plugin`` calls only that plugin; plugins named in ``skip`` are not called.
    ``reported`` (a set of ``"<plugin>:<hook>"``) prints each new failure once to stderr.
    Returns ``(plugin name, exception)`` for each plugin that raised.
    """
    pm = plugin_manager()
    if not name.startswith("manyview_") or (caller := getattr(pm.hook, name, None)) is None:
        raise ValueError(f"unknown hook {name!r}{did_you_mean(name, vars(pm.hook))}")
    if missing := [arg for arg in caller.spec.argnames if arg not in kwargs]:
        raise TypeError(f"{name} needs the argument(s) {', '.join(missing)}: pass them by keyword")
    impls = [i for i in reversed(caller.get_hookimpls()) if not (i.wrapper or i.hookwrapper)]
    order = list(dict.fromkeys(i.plugin for i in impls))  # pluggy calls the last one first
    contained: tuple[type[BaseException], ...] = (Exception, SystemExit)
    if contain_exits:
        contained += (KeyboardInterrupt,)
    failures: list[tuple[str, BaseException]] = []
    for obj in order:
        who = pm.get_name(obj) or repr(obj)
        if (plugin is not None and who != plugin) or who in skip:
            continue
        try:
            pm.subset_hook_caller(name, remove_plugins=[o for o in order if o is not obj])(**kwargs)
        except contained as exc:  # a broken plugin is reported, never fatal
            failures.append((who, exc))
            if reported is not None and f"{who}:{name}" not in reported:
                reported.add(f"{who}:{name}")
                print(f"manyview: plugin {who!r} failed in {name}: {_why(exc)}", file=sys.stderr)
    return failures


def _why(exc: BaseException) -> str:
    """``"Type: message"`` on one line (``SystemExit: 3``, ``KeyboardInterrupt``)."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass
class HookGuard:
    """Lifecycle hooks isolated for one run: what the trainer calls its hooks through.

    Every call is :func:`call_hook` with ``contain_exits=True``: a plugin that raises
    anything, ``SystemExit`` and ``KeyboardInterrupt`` included, is reported once per hook
    (naming the plugin) and the run goes on. A plugin that has failed ``max_failures`` times
    in all (any hooks) is disabled for the rest of the run with a one-line warning on stderr.
    """

    max_failures: int = 3
    reported: set[str] = field(default_factory=set)
    failures: dict[str, int] = field(default_factory=dict)
    disabled: set[str] = field(default_factory=set)

    def call(self, name: str, /, **kwargs: Any) -> list[tuple[str, BaseException]]:
        """Call hook ``name`` on every plugin not disabled; count and report failures."""
        failed = call_hook(
            name, reported=self.reported, contain_exits=True, skip=self.disabled, **kwargs
        )
        for who, exc in failed:
            self.failures[who] = count = self.failures.get(who, 0) + 1
            if count >= self.max_failures and who not in self.disabled:
                self.disabled.add(who)
                print(
                    f"manyview: plugin {who!r} failed {count} times (last in {name}: "
                    f"{_why(exc)}); its hooks are disabled for the rest of this run. Fix the "
                    f"plugin, or set MANYVIEW_DISABLE_PLUGINS={who} to run without it",
                    file=sys.stderr,
                )
        return failed


def reload() -> None:
    """Forget what was loaded; the next lookup loads built-ins and entry points again."""
    global _loaded
    with _lock:
        _loaded = None


def registry() -> Registry:
    """What the loaded plugins registered."""
    return Registry(e for info in _state()[1] for e in info.entries)


def plugin_manager() -> pluggy.PluginManager:
    """The pluggy manager; its name map, tracing and monitoring are pluggy's own."""
    return _state()[0]


def commands() -> list[Command]:
    """The commands the loaded plugins added to ``manyview``, in load order (refused ones left out)."""
    return [c for info in _state()[1] for c in info.commands]


def plugins() -> list[PluginInfo]:
    """Every plugin found: built-ins, entry points by distribution, then in-process ones."""
    return list(_state()[1])


def register_plugin(
    obj: Any, name: str | None = None, distribution: str = "__main__"
) -> PluginInfo:
    """Register an in-process plugin (a module or object with hookimpls: notebooks, tests)."""
    name = name or getattr(obj, "__name__", None) or type(obj).__name__
    return _add(PluginInfo(name, distribution, "0", repr(obj)), lambda: obj)


def unregister_plugin(name: str) -> None:
    """Undo :func:`register_plugin`: unregister plugin ``name`` and drop what it registered."""
    plugin_manager().unregister(name=name)
    _state()[1][:] = [info for info in _state()[1] if info.name != name]
