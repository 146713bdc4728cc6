"""Checks of a constructor's options: each returns the value (as an ``int`` or a ``float``)
or raises a one-line ``ValueError`` that starts with who is checking, names the option and
says what it must be, with the value it got.

Python::

    from manyview.options import check_fraction, check_int, check_ints, check_positive

    check_ints("my_view", channels=channels, layers=layers)  # positive ints
    self.p = check_fraction(p, "p", "my_view")  # "my_view: p must lie in [0, 1], got 1.5"
    self.margin = check_positive(margin, "margin", "my_loss")
    self.masks = check_int(masks, "masks", "my_view", least=0)  # "... must be an int >= 0"

A bool is never a number here (``True`` is refused where a count or a weight is expected).
manyview's losses, views, encoders and readers use these checks, and so can any plugin.
"""

from __future__ import annotations

import inspect
import math
import numbers
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

from manyview.registry import did_you_mean

__all__ = [
    "MAX_ALLOCATION_BYTES",
    "OptionTypeError",
    "check_allocation",
    "check_choice",
    "check_fraction",
    "check_int",
    "check_ints",
    "check_non_negative",
    "check_number",
    "check_option_types",
    "check_positive",
    "option_types",
]


def _prefix(who: str | None) -> str:
    return f"{who}: " if who else ""


def check_int(value: Any, name: str, who: str | None, *, least: int = 1) -> int:
    """``value`` if it is an int of at least ``least`` (a bool is not one).

    Raises:
        ValueError: ``"{who}: {name} must be a positive int, got {value!r}"`` (for
            ``least=1``, the default) or ``"... must be an int >= {least}, got ..."``.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        what = "a positive int" if least == 1 else f"an int >= {least}"
        raise ValueError(f"{_prefix(who)}{name} must be {what}, got {value!r}")
    return int(value)


def check_ints(who: str | None, /, *, least: int = 1, **values: Any) -> None:
    """:func:`check_int` on every keyword argument, in order: ``check_ints("mlp",
    input_dim=input_dim, layers=layers)``; ``least`` as for :func:`check_int`."""
    for name, value in values.items():
        check_int(value, name, who, least=least)


def _number(
    value: Any,
    name: str,
    who: str | None,
    must: str,
    *,
    above_zero: bool = False,
    most: float = math.inf,
) -> float:
    """``value`` as a float when it is a finite number (not a bool) from 0 (excluded with
    ``above_zero``) to ``most``, else the ValueError ``"{who}: {name} must {must}, got
    {value}"``."""
    if not isinstance(value, bool):
        try:
            number = float(value)
        except (TypeError, ValueError):
            pass
        else:
            low_ok = number > 0 if above_zero else number >= 0
            if low_ok and number <= most and math.isfinite(number):
                return number
            raise ValueError(f"{_prefix(who)}{name} must {must}, got {number}")
    raise ValueError(f"{_prefix(who)}{name} must {must}, got {value!r}")


def check_number(value: Any, name: str, who: str | None = None) -> float:
    """``value`` as a float if it is a finite number of any sign (a bias, an offset).

    Raises:
        ValueError: ``"{who}: {name} must be a finite number, got {value!r}"``.
    """
    if not isinstance(value, bool):
        try:
            number = float(value)
        except (TypeError, ValueError):
            pass
        else:
            if math.isfinite(number):
                return number
    raise ValueError(f"{_prefix(who)}{name} must be a finite number, got {value!r}")


def check_positive(value: Any, name: str, who: str | None = None) -> float:
    """``value`` as a float if it is a finite number > 0 (a temperature, a scale, a length
    in seconds).

    Raises:
        ValueError: ``"{who}: {name} must be a positive finite number, got {value}"``
            (without the ``who`` prefix when ``who`` is ``None``).
    """
    return _number(value, name, who, "be a positive finite number", above_zero=True)


def check_non_negative(value: Any, name: str, who: str | None) -> float:
    """``value`` as a float if it is a finite number >= 0 (a weight, a largest shift).

    Raises:
        ValueError: ``"{who}: {name} must be a finite number >= 0, got {value}"``.
    """
    return _number(value, name, who, "be a finite number >= 0")


def check_fraction(value: Any, name: str, who: str | None) -> float:
    """``value`` as a float if it lies in [0, 1] (a probability, a momentum, a share).

    Raises:
        ValueError: ``"{who}: {name} must lie in [0, 1], got {value}"``.
    """
    return _number(value, name, who, "lie in [0, 1]", most=1.0)


def check_choice(value: Any, choices: tuple[str, ...], what: str, who: str | None) -> str:
    """``value`` if it is one of ``choices``.

    Raises:
        ValueError: ``"{who}: unknown {what} {value!r}; did you mean 'x'? (choose from
            ...)"``, the hint only when a choice is close.
    """
    if not isinstance(value, str) or value not in choices:
        raise ValueError(
            f"{_prefix(who)}unknown {what} {value!r}{did_you_mean(value, choices, cutoff=0.5)} "
            f"(choose from {', '.join(repr(c) for c in choices)})"
        )
    return value


class OptionTypeError(TypeError, ValueError):
    """An option of a factory has the wrong type (a string where a bool is expected, a bool
    or a float where an int is); raised by :func:`check_option_types`."""


_SIMPLE = {"bool": bool, "int": int, "float": float, "None": type(None)}


def _annotation_names(annotation: Any) -> set[str] | None:
    """The names of a union of simple types (``"float | None"`` -> ``{"float", "None"}``),
    or ``None`` when the annotation holds anything else."""
    if isinstance(annotation, str):
        text = annotation.strip()
        if text.startswith("Optional[") and text.endswith("]"):
            text = text[len("Optional[") : -1] + " | None"
        names = {part.strip() for part in text.split("|")}
        return names if names <= set(_SIMPLE) else None
    if annotation is None or annotation is type(None):
        return {"None"}
    if isinstance(annotation, type):
        return {annotation.__name__} if annotation.__name__ in _SIMPLE else None
    args = typing.get_args(annotation)
    if args and typing.get_origin(annotation) in (typing.Union, types.UnionType):
        names: set[str] = set()
        for arg in args:
            part = _annotation_names(arg)
            if part is None:
                return None
            names |= part
        return names
    return None


def option_types(factory: Callable[..., Any]) -> dict[str, tuple[str, bool]]:
    """The bool / int / float options of ``factory``'s signature: option name ->
    ``(expected, none_ok)`` with ``expected`` one of ``"bool"``, ``"int"``, ``"float"``
    (an int is a float here) or ``"number"`` (an unannotated option whose default is an
    int: an int or a float). From each parameter's annotation (a union of ``bool``, ``int``,
    ``float`` and ``None`` only; any other annotation is not checked), else from its
    default's type."""
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return {}
    out: dict[str, tuple[str, bool]] = {}
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY):
            continue
        if p.annotation is not p.empty:
            names = _annotation_names(p.annotation)
            if names is None:
                continue
        elif p.default is p.empty or p.default is None:
            continue
        else:
            kind = type(p.default).__name__
            if kind not in ("bool", "int", "float"):
                continue
            names = {"number" if kind == "int" else kind}
        none_ok = "None" in names or p.default is None
        names.discard("None")
        if not names:
            continue
        if names == {"bool"}:
            out[p.name] = ("bool", none_ok)
        elif names == {"int"}:
            out[p.name] = ("int", none_ok)
        elif names <= {"float", "int", "number"}:
            out[p.name] = ("float" if names != {"number"} else "number", none_ok)
        # a union with bool and a number ("bool | int") is left to the factory
    return out


def _fits(value: Any, expected: str) -> bool:
    if isinstance(value, bool) or type(value).__name__ == "bool_":  # numpy's bool
        return expected == "bool"
    if expected == "bool":
        return False
    if expected == "int":
        return isinstance(value, numbers.Integral)
    return isinstance(value, numbers.Real)


_WHAT = {
    "bool": "a bool (true or false)",
    "int": "an int",
    "float": "a number",
    "number": "a number",
}


def check_option_types(factory: Callable[..., Any], options: Mapping[str, Any], who: str) -> None:
    """Refuse every option of ``options`` whose type does not fit ``factory``'s signature
    (:func:`option_types`): a bool option takes only ``True``/``False`` (not the string
    ``"false"``, which is truthy), an int option only an int (not ``2.0``, not ``True``), a
    float option an int or a float (not ``True``); ``None`` only where the annotation or the
    default allows it. ``manyview.create`` calls it for every factory of every kind.

    Raises:
        OptionTypeError: one line, e.g. ``"loss 'infonce': option 'normalize' must be a bool
            (true or false), got the string 'false'; in TOML write normalize = false, without
            quotes"``.
    """
    types = option_types(factory)
    for name, value in options.items():
        if name not in types:
            continue
        expected, none_ok = types[name]
        if value is None:
            if none_ok:
                continue
        elif _fits(value, expected):
            continue
        got = (
            f"the string {value!r}"
            if isinstance(value, str)
            else f"{value!r} ({type(value).__name__})"
        )
        fix = ""
        if (
            expected == "bool"
            and isinstance(value, str)
            and value.strip().lower() in ("true", "false", "yes", "no", "0", "1")
        ):
            word = "true" if value.strip().lower() in ("true", "yes", "1") else "false"
            fix = f"; in TOML write {name} = {word}, without quotes (Python: {word.title()})"
        elif expected == "int" and isinstance(value, float) and value.is_integer():
            fix = f"; write {int(value)}, without a decimal point"
        elif expected == "int" and isinstance(value, float):
            fix = "; give a whole number"
        elif isinstance(value, str):
            fix = "; write it without quotes"
        elif isinstance(value, bool):
            fix = f"; give {_WHAT[expected]}, not {value}"
        elif value is None:
            fix = f"; give {_WHAT[expected]} (this option has no None)"
        raise OptionTypeError(f"{who}: option {name!r} must be {_WHAT[expected]}, got {got}{fix}")


MAX_ALLOCATION_BYTES = 64 * 2**30
"""The most memory one constructor's buffers may ask for (64 GiB): more is a mistake in an
option (a dataset size of 10**12), refused up front by :func:`check_allocation` rather than
by the allocator."""


def check_allocation(
    elements: int,
    bytes_each: int,
    what: str,
    who: str | None,
    *,
    limit: int = MAX_ALLOCATION_BYTES,
) -> None:
    """Refuse buffers of ``elements`` entries of ``bytes_each`` bytes over ``limit`` bytes.

    Raises:
        ValueError: ``"{who}: {what} would take 14.6 TiB (... entries); that is over the
            64 GiB one loss may allocate: check the option"``.
    """
    total = int(elements) * int(bytes_each)
    if total <= limit:
        return
    size, unit = float(total), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if size < 1024 or unit == "EiB":
            break
        size /= 1024
    raise ValueError(
        f"{_prefix(who)}{what} would take {size:.1f} {unit} ({int(elements):,} entries), over "
        f"the {limit / 2**30:g} GiB one module may allocate; check the option (a dataset size, "
        "a bank size)"
    )
