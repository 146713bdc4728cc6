"""What plugins registered: one :class:`Entry` per (kind, name), looked up by name.

Names are unique per kind. When two plugins register the same name, the bare name becomes
ambiguous: looking it up raises :class:`AmbiguousNameError` naming both distributions, and
each stays reachable through its qualified form ``"<distribution>:<name>"`` (for example
``"manyview:infonce"``). A qualified name always works, ambiguous or not.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

KINDS: tuple[str, ...] = (
    "view",
    "encoder",
    "teacher",
    "loss",
    "dataset",
    "benchmark",
    "recipe",
    "config",
    "reader",
)
"""The kinds of things plugins register, in the order ``manyview plugins`` shows them."""

HOOK_FOR_KIND: dict[str, str] = {
    "view": "manyview_register_views",
    "encoder": "manyview_register_encoders",
    "teacher": "manyview_register_teachers",
    "loss": "manyview_register_losses",
    "dataset": "manyview_register_datasets",
    "benchmark": "manyview_register_benchmarks",
    "recipe": "manyview_register_recipes",
    "config": "manyview_register_configs",
    "reader": "manyview_register_readers",
}

_PLURALS = {kind + ("es" if kind.endswith("s") else "s"): kind for kind in KINDS}


class RegistryError(LookupError):
    """Base class of lookup errors; its message says what went wrong and how to fix it."""

    def __str__(self) -> str:  # LookupError would quote a single argument like KeyError
        return str(self.args[0]) if self.args else ""


class UnknownKindError(RegistryError, ValueError):
    """The kind is none of :data:`KINDS`."""


class UnknownNameError(RegistryError):
    """No plugin registered this name for this kind."""


class AmbiguousNameError(RegistryError):
    """Two or more plugins registered this name; use the qualified form."""


class FactoryLoadError(RegistryError, ImportError):
    """A registered factory string could not be imported."""


def normalize_kind(kind: str) -> str:
    """Return the canonical kind for ``kind`` ("losses" and "loss" both give "loss")."""
    key = str(kind).strip().lower()
    key = _PLURALS.get(key, key)
    if key not in KINDS:
        raise UnknownKindError(
            f"unknown kind {kind!r}{_suggest(key, KINDS) or '.'} The kinds are: {', '.join(KINDS)}"
        )
    return key


def _suggest(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=3, cutoff=0.6)
    if not close:
        return ""
    return "; did you mean " + " or ".join(repr(c) for c in close) + "?"


def _first_doc_line(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0].strip() if doc.strip() else ""


@dataclass(frozen=True)
class Entry:
    """One registered thing.

    Attributes:
        kind: one of :data:`KINDS`.
        name: the registered name, e.g. ``"infonce"``.
        factory: a callable, or a ``"module:attr"`` string imported on first use.
        plugin: the distribution that registered it (``"manyview"`` for built-ins).
        summary: one line for ``manyview list``.
        modality: the modality a view or encoder accepts, else ``None``.
        meta: any further keyword metadata given to ``register``.
    """

    kind: str
    name: str
    factory: Callable[..., Any] | str
    plugin: str
    summary: str = ""
    modality: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def qualified_name(self) -> str:
        return f"{self.plugin}:{self.name}"

    def load(self) -> Callable[..., Any]:
        """Return the factory, importing it first when it was registered as a string."""
        if not isinstance(self.factory, str):
            return self.factory
        module_name, _, attr = self.factory.partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except Exception as exc:
            raise FactoryLoadError(
                f"{self.kind} {self.name!r} from plugin {self.plugin!r} could not be loaded "
                f"from {self.factory!r}: {type(exc).__name__}: {exc}. Reinstall or update that "
                f"plugin, or disable it with MANYVIEW_DISABLE_PLUGINS={self.plugin}"
            ) from exc
        return obj

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description (used by ``manyview list --json``)."""
        out: dict[str, Any] = {"name": self.name, "plugin": self.plugin, "summary": self.summary}
        if self.modality is not None:
            out["modality"] = self.modality
        return out


def make_entry(
    kind: str,
    name: str,
    factory: Callable[..., Any] | str,
    plugin: str,
    *,
    summary: str | None = None,
    modality: str | None = None,
    **meta: Any,
) -> Entry:
    """Validate one ``register(...)`` call and build its :class:`Entry`."""
    if not isinstance(name, str) or not name or ":" in name or name != name.strip():
        raise ValueError(
            f"{kind} name {name!r} is not valid: use a non-empty string without ':' or spaces"
        )
    if isinstance(factory, str):
        if ":" not in factory:
            raise ValueError(
                f"{kind} {name!r}: factory string {factory!r} must look like 'package.module:Attr'"
            )
    elif not callable(factory):
        raise TypeError(
            f"{kind} {name!r}: factory must be a class, a function or a 'module:attr' string, "
            f"not {type(factory).__name__}"
        )
    if kind in ("view", "encoder", "reader") and not modality:
        raise ValueError(
            f"{kind} {name!r} must say which modality it accepts: register(..., modality='image')"
        )
    if summary is None:
        summary = "" if isinstance(factory, str) else _first_doc_line(factory)
    return Entry(kind, name, factory, plugin, summary, modality, dict(meta))


class Registry:
    """Entries by kind and name; built once by :mod:`manyview.plugins`."""

    def __init__(self) -> None:
        self._by_kind: dict[str, dict[str, list[Entry]]] = {kind: {} for kind in KINDS}

    def add(self, entry: Entry) -> None:
        same = self._by_kind[entry.kind].setdefault(entry.name, [])
        if any(e.plugin == entry.plugin for e in same):
            raise ValueError(f"{entry.kind} {entry.name!r} is registered twice by {entry.plugin!r}")
        same.append(entry)

    def has(self, kind: str, name: str, plugin: str) -> bool:
        return any(e.plugin == plugin for e in self._by_kind[kind].get(name, []))

    def remove(self, kind: str, name: str, plugin: str) -> None:
        same = [e for e in self._by_kind[kind].get(name, []) if e.plugin != plugin]
        if same:
            self._by_kind[kind][name] = same
        else:
            self._by_kind[kind].pop(name, None)

    def __iter__(self) -> Iterator[Entry]:
        for kind in KINDS:
            for name in sorted(self._by_kind[kind]):
                yield from self._by_kind[kind][name]

    def entries(self, kind: str) -> list[Entry]:
        """Every entry of one kind, sorted by name, then plugin."""
        kind = normalize_kind(kind)
        return [e for name in sorted(self._by_kind[kind]) for e in self._by_kind[kind][name]]

    def names(self, kind: str) -> list[str]:
        """Sorted names of one kind; an ambiguous name is listed once per plugin, qualified."""
        out: list[str] = []
        for name, same in self._by_kind[normalize_kind(kind)].items():
            out.extend([name] if len(same) == 1 else [e.qualified_name for e in same])
        return sorted(out)

    def get(self, kind: str, name: str) -> Entry:
        """The entry for ``name`` (bare or ``"plugin:name"``), or a helpful error."""
        kind = normalize_kind(kind)
        table = self._by_kind[kind]
        plugin, sep, bare = str(name).rpartition(":")
        same = table.get(bare if sep else name, [])
        if sep:
            for e in same:
                if e.plugin == plugin:
                    return e
        elif len(same) == 1:
            return same[0]
        elif len(same) > 1:
            options = ", ".join(repr(e.qualified_name) for e in same)
            raise AmbiguousNameError(
                f"{kind} {name!r} is registered by several plugins "
                f"({', '.join(e.plugin for e in same)}); name one of {options}"
            )
        known = list(table) + [e.qualified_name for v in table.values() for e in v]
        hint = _suggest(str(name), known)
        listing = ", ".join(sorted(table)) or "none are installed"
        raise UnknownNameError(
            f"unknown {kind} {name!r}{hint or '.'} Known {kind} names: {listing}. "
            f"`manyview list {kind}` shows them; `manyview plugins` shows what failed to load."
        )
