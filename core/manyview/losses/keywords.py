"""The keyword inputs a loss call takes, and a one-line error for any other.

A loss's call takes its embeddings (or student output) and keyword inputs. Which keywords:

- the recipe inputs ``labels``, ``index`` and ``targets`` only when the loss declares them
  in ``needs`` or ``inputs`` (``docs/architecture.md``, "Loss inputs"); a distillation loss
  (``takes == "student"``) always takes ``targets``;
- every other keyword of the methods the class itself implements (``forward``,
  ``compute``, ``compute_local``, ``per_item``), e.g. SupCon's ``mask`` or DINO's ``step``,
  and the names in ``_item_inputs``;
- for a loss wrapping another (a ``base`` module, e.g. ``pwe`` and ``divergence_clip``),
  also every keyword the base takes.

Anything else — a typo such as ``supcon(z, label=y)``, or ``labels=`` given to a loss that
would ignore them — is refused by :func:`check_call_keywords` (which
:class:`~manyview.losses.base.MultiViewLoss` and
:class:`~manyview.distill.base.DistillationLoss` call first) with
:class:`UnexpectedInputError`, instead of being silently swallowed. A recipe input passed as
``None`` (``labels=None``) means "not there" and is always accepted.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping
from typing import Any

from torch import nn

from manyview.registry import did_you_mean

__all__ = ["RECIPE_INPUTS", "UnexpectedInputError", "call_keywords", "check_call_keywords"]

RECIPE_INPUTS = ("labels", "index", "targets")
"""The keyword inputs a recipe may give a loss; a loss takes them only when it declares them."""

_METHODS = ("forward", "compute", "compute_local", "per_item")
_SKIP = frozenset({"self", "offset", "count"})


class UnexpectedInputError(TypeError):
    """A loss was called with a keyword input it does not take (the message names it and
    the keywords the loss does take)."""


def _is_generic(owner: type) -> bool:
    """The base classes' own methods: their keywords are the generic contract, not what a
    particular loss takes."""
    return owner.__module__ in ("manyview.losses.base", "manyview.distill.base") and (
        owner.__name__ in ("MultiViewLoss", "ContrastiveLoss", "DistillationLoss")
    )


@functools.cache
def _class_keywords(cls: type) -> frozenset[str]:
    """The keywords of the methods ``cls`` (or a non-generic ancestor) implements, past their
    first data argument."""
    names: set[str] = set()
    for method in _METHODS:
        owner = next((k for k in cls.__mro__ if method in vars(k)), None)
        if owner is None or _is_generic(owner):
            continue
        try:
            params = list(inspect.signature(vars(owner)[method]).parameters.values())
        except (TypeError, ValueError):  # pragma: no cover - a builtin without a signature
            continue
        positional = [p for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
        data = positional[1:2] if method != "per_item" else positional[1:3]  # after self
        for p in params:
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY) or p in data:
                continue
            names.add(p.name)
    names.update(getattr(cls, "_item_inputs", ()))
    return frozenset(names - _SKIP)


def call_keywords(loss: Any) -> frozenset[str]:
    """Every keyword input a call of ``loss`` takes (see the module docstring)."""
    declared = {*getattr(loss, "needs", ()), *getattr(loss, "inputs", ())}
    names = set(_class_keywords(type(loss))) - set(RECIPE_INPUTS)
    names |= declared
    if getattr(loss, "takes", "views") == "student":
        names.add("targets")
    base = getattr(loss, "base", None)
    if isinstance(base, nn.Module) and base is not loss:
        names |= call_keywords(base)
    return frozenset(names)


def _takes(accepted: frozenset[str]) -> str:
    """``"It takes: labels=, mask="`` or ``"It takes no keyword inputs"``."""
    if not accepted:
        return "It takes no keyword inputs"
    return "It takes: " + ", ".join(f"{k}=" for k in sorted(accepted))


def _constructor_options(loss: Any) -> list[str]:
    try:
        params = inspect.signature(type(loss).__init__).parameters.values()
    except (TypeError, ValueError):  # pragma: no cover - a builtin without a signature
        return []
    return [
        p.name
        for p in params
        if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    ]


def check_call_keywords(loss: Any, given: Mapping[str, Any], who: str | None = None) -> None:
    """Refuse every keyword of ``given`` that ``loss`` does not take (a recipe input given as
    ``None`` is accepted: it means "not there").

    Raises:
        UnexpectedInputError: one line naming the keyword, a close match (``label`` ->
            ``labels``) and what the loss takes, e.g. ``"SupCon got an unexpected keyword
            input 'label'; did you mean 'labels'? It takes: labels=, mask="`` (a constructor
            option given to the call, ``temperature=``, is said to be one); or for
            ``labels=`` given to a loss that would ignore them, ``"InfoNCE does not use
            labels= (they would be ignored); drop them or use a loss that does (e.g.
            'supcon')..."``.
    """
    who = who or getattr(loss, "loss_name", type(loss).__name__)
    accepted: frozenset[str] | None = None
    for key, value in given.items():
        if value is None and key in RECIPE_INPUTS:
            continue
        if accepted is None:
            accepted = call_keywords(loss)
        if key in accepted:
            continue
        takes = _takes(accepted)
        if key in RECIPE_INPUTS:
            other = {"labels": "'supcon' or 'supremix'", "index": "'isogclr'", "targets": "'kd'"}
            raise UnexpectedInputError(
                f"{who} does not use {key}= (they would be ignored); drop {key}=, or use a "
                f"loss that does (e.g. {other[key]}). {takes}"
            )
        hint = did_you_mean(key, {*accepted, *RECIPE_INPUTS}, cutoff=0.6)
        note = ""
        for recipe_input in RECIPE_INPUTS:
            if f"'{recipe_input}'" in hint and recipe_input not in accepted:
                note = f" ({who} does not use {recipe_input}= either)"
        options = _constructor_options(loss)
        if key in options or did_you_mean(key, options):
            close = key if key in options else did_you_mean(key, options).split("'")[1]
            note += (
                f" {close!r} is an option of the loss, set when it is built: "
                f"manyview.create('loss', ..., {close}=...)."
            )
        raise UnexpectedInputError(
            f"{who} got an unexpected keyword input {key!r}{hint or '.'}{note} {takes}"
        )
