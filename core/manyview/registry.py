"""Entries that plugins registered, looked up by kind and name.

A name is unique per kind and plugin. A name two plugins registered is ambiguous
(:class:`AmbiguousNameError` names both); its qualified form ``"<distribution>:<name>"``
(e.g. ``"manyview:infonce"``) always picks one.
"""

from __future__ import annotations

import difflib
import inspect
import pkgutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

KINDS = ("view", "encoder", "teacher", "loss", "dataset", "benchmark", "recipe", "config", "reader")
"""The kinds of things plugins register, in the order ``manyview plugins`` shows them."""
_PLURALS = {kind + ("es" if kind.endswith("s") else "s"): kind for kind in KINDS}
HOOK_FOR_KIND = {kind: f"manyview_register_{plural}" for plural, kind in _PLURALS.items()}
"""Kind -> the hook that registers it."""
Factory = Callable[..., Any] | str


class RegistryError(LookupError):
    """A lookup failed; the message says what went wrong and how to fix it."""


class UnknownKindError(RegistryError, ValueError):
    """The kind is none of :data:`KINDS`."""


class UnknownNameError(RegistryError):
    """No plugin registered this name for this kind."""


class AmbiguousNameError(RegistryError):
    """Several plugins registered this name; use the qualified form."""


class FactoryLoadError(RegistryError, ImportError):
    """A registered ``"module:attr"`` factory could not be imported."""


def did_you_mean(word: str, choices: Iterable[str], *, cutoff: float = 0.6) -> str:
    """``"; did you mean 'x'?"`` or ``"; did you mean 'x' or 'y'?"`` (the closest of
    ``choices``, similarity at least ``cutoff``), or ``""``: the tail of a one-line error."""
    close = difflib.get_close_matches(str(word), list(dict.fromkeys(map(str, choices))), 2, cutoff)
    return f"; did you mean {' or '.join(map(repr, close))}?" if close else ""


def fold_name(name: str) -> str:
    """``name`` lower-cased without ``_``, ``-``, ``.``, spaces and a trailing ``loss``: the
    key that loose name matching compares (``"MV_DHEL"`` and ``"mv_dhel"`` both give
    ``"mvdhel"``, ``"SupConLoss"`` gives ``"supcon"``)."""
    key = "".join(ch for ch in str(name).lower() if ch not in "_-. ")
    return key[: -len("loss")] if key.endswith("loss") and len(key) > len("loss") else key


def normalize_kind(kind: str) -> str:
    """The canonical kind for ``kind`` (``"losses"`` and ``"loss"`` both give ``"loss"``)."""
    key = _PLURALS.get(str(kind).strip().lower(), str(kind).strip().lower())
    if key not in KINDS:
        hint = did_you_mean(key, KINDS) or "."
        raise UnknownKindError(f"unknown kind {kind!r}{hint} The kinds are: {', '.join(KINDS)}")
    return key


@dataclass(frozen=True)
class Entry:
    """One registered thing; ``plugin`` is the distribution that registered it."""

    kind: str
    name: str
    factory: Factory  # a callable, or a "module:attr" string imported on first use
    plugin: str
    summary: str = ""
    modality: str | None = None  # that of a view, encoder or reader
    meta: Mapping[str, Any] = field(default_factory=dict)  # any further keyword metadata

    @property
    def qualified_name(self) -> str:
        """``"<distribution>:<name>"``, which always picks this entry."""
        return f"{self.plugin}:{self.name}"

    def load(self) -> Callable[..., Any]:
        """The factory, imported first when it was registered as a string."""
        if not isinstance(self.factory, str):
            return self.factory
        try:
            return pkgutil.resolve_name(self.factory)
        except Exception as exc:
            raise FactoryLoadError(
                f"{self.kind} {self.name!r} from plugin {self.plugin!r} could not be loaded "
                f"from {self.factory!r}: {type(exc).__name__}: {exc}. Reinstall or update that "
                f"plugin, or disable it with MANYVIEW_DISABLE_PLUGINS={self.plugin}"
            ) from exc

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description (``manyview list --json``), with where the factory lives."""
        f = self.factory
        qualname = getattr(f, "__qualname__", type(f).__qualname__)  # an instance: its class
        where = f if isinstance(f, str) else f"{f.__module__}:{qualname}"
        out = {"name": self.name, "plugin": self.plugin, "summary": self.summary}
        if self.meta.get("aliases"):
            out["aliases"] = list(self.meta["aliases"])
        return out | ({"modality": self.modality} if self.modality else {}) | {"factory": where}


def make_entry(kind: str, name: str, factory: Factory, plugin: str, **meta: Any) -> Entry:
    """Check one ``register(name, factory, **meta)`` call of ``plugin`` and build its entry."""
    summary, modality = meta.pop("summary", None), meta.pop("modality", None)
    suffixes = meta.get("suffixes", ())
    if not isinstance(name, str) or not name or ":" in name or name != name.strip():
        raise ValueError(f"{kind} name {name!r} is not valid: use a string without ':' or spaces")
    if isinstance(factory, str) and ":" not in factory:
        raise ValueError(f"{kind} {name!r}: factory {factory!r} must be 'package.module:Attr'")
    if not isinstance(factory, str | Callable):
        raise TypeError(f"{kind} {name!r}: factory must be a class, function or 'module:attr'")
    if kind in ("view", "encoder", "reader") and not modality:
        raise ValueError(f"{kind} {name!r} must name its modality: register(..., modality='image')")
    if not isinstance(suffixes, tuple | list) or not all(str(s).startswith(".") for s in suffixes):
        raise ValueError(f"{kind} {name!r}: give suffixes as a tuple such as ('.wav', '.flac')")
    aliases = meta.get("aliases", ())
    if not isinstance(aliases, tuple | list) or not all(
        isinstance(a, str) and a and ":" not in a for a in aliases
    ):
        raise ValueError(f"{kind} {name!r}: give aliases as a tuple of names such as ('nt_xent',)")
    if summary is None:
        doc = "" if isinstance(factory, str) else (inspect.getdoc(factory) or "").strip()
        summary = doc.splitlines()[0].strip() if doc else ""
    return Entry(kind, name, factory, plugin, summary, modality, meta)


Row = Factory | tuple[Factory, str] | Mapping[str, Any]
"""One row of a :func:`register_all` table."""


def register_all(register: Callable[..., Any], table: Mapping[str, Row], /, **common: Any) -> None:
    """Call ``register(name, factory, **common, **meta)`` once per row of ``table``, in order.

    ``table`` maps each name to one of

    - a factory: a class, a function or a ``"module:attr"`` string;
    - a pair ``(factory, summary)``;
    - a dict of ``register``'s keywords with the factory under ``"factory"``:
      ``{"factory": "pkg.readers:Flac", "summary": "...", "suffixes": (".flac",)}``.

    ``common`` is the metadata every row shares, such as ``modality="audio"``; a row's own
    keyword wins over it. A malformed row raises ``ValueError`` naming it::

        @manyview.hookimpl
        def manyview_register_views(register):
            manyview.register_all(register, VIEWS, modality="audio")
    """
    for name, row in table.items():
        if isinstance(row, Mapping):
            meta = dict(row)
            if "factory" not in meta:
                raise ValueError(f"register_all: row {name!r} is a dict without 'factory'")
            factory = meta.pop("factory")
        elif isinstance(row, tuple):
            if len(row) != 2:
                raise ValueError(f"register_all: row {name!r} must be (factory, summary)")
            factory, meta = row[0], {"summary": row[1]}
        else:
            factory, meta = row, {}
        register(name, factory, **(common | meta))


class Registry(tuple[Entry, ...]):
    """Entries, looked up by kind and name (:func:`manyview.manager.registry` has them all)."""

    def entries(self, kind: str) -> list[Entry]:
        """Every entry of one kind, sorted by name, then plugin."""
        kind = normalize_kind(kind)
        return sorted((e for e in self if e.kind == kind), key=lambda e: (e.name, e.plugin))

    def names(self, kind: str) -> list[str]:
        """Sorted names of one kind; a name several plugins registered is listed qualified."""
        entries = self.entries(kind)
        bare = [e.name for e in entries]
        return sorted(e.qualified_name if bare.count(e.name) > 1 else e.name for e in entries)

    @staticmethod
    def _loose_match(kind: str, entries: list[Entry], name: str) -> Entry | None:
        """The one entry whose name or alias equals ``name`` up to case, ``_``/``-`` and a
        ``Loss`` suffix (``"InfoNCE"``, ``"MV_DHEL"``, ``"nt_xent"``), or ``None``."""
        plugin, _, bare = str(name).rpartition(":")
        key = fold_name(bare)
        found = [
            e
            for e in entries
            if (not plugin or e.plugin == plugin)
            and key in {fold_name(n) for n in (e.name, *e.meta.get("aliases", ()))}
        ]
        if len(found) > 1:
            options = ", ".join(repr(e.qualified_name) for e in found)
            raise AmbiguousNameError(
                f"{kind} {name!r} matches several entries; name one of {options}"
            )
        return found[0] if found else None

    def get(self, kind: str, name: str) -> Entry:
        """The entry for ``name`` (bare or ``"<distribution>:<name>"``), or a helpful error.

        Besides the exact name, the match ignores case, ``_``, ``-`` and a trailing
        ``Loss`` (``"InfoNCE"``, ``"MV_DHEL"``, ``"SupConLoss"``), and accepts the aliases
        an entry registered (``aliases=("nt_xent",)``)."""
        kind, entries = normalize_kind(kind), self.entries(kind)
        found = [e for e in entries if name in (e.name, e.qualified_name)]
        if len(found) == 1:
            return found[0]
        if found:
            plugins = ", ".join(e.plugin for e in found)
            options = ", ".join(repr(e.qualified_name) for e in found)
            raise AmbiguousNameError(
                f"{kind} {name!r} is registered by several plugins ({plugins}); name one of {options}"
            )
        loose = self._loose_match(kind, entries, name)
        if loose is not None:
            return loose
        aliases = [str(a) for e in entries for a in e.meta.get("aliases", ())]
        choices = [n for e in entries for n in (e.name, e.qualified_name)] + aliases
        hint = did_you_mean(name, choices) or did_you_mean(fold_name(name), choices) or "."
        known = ", ".join(sorted({e.name for e in entries})) or "none are installed"
        raise UnknownNameError(
            f"unknown {kind} {name!r}{hint} Known {kind} names: {known}. `manyview list {kind}` "
            "shows them; `manyview plugins` shows what failed to load."
        )
