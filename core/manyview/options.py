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

import math
from typing import Any

from manyview.registry import did_you_mean

__all__ = [
    "check_choice",
    "check_fraction",
    "check_int",
    "check_ints",
    "check_non_negative",
    "check_positive",
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
