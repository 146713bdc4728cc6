"""manyview.options: one-line checks of constructor options."""

from __future__ import annotations

import math

import pytest

from manyview.options import (
    check_choice,
    check_fraction,
    check_int,
    check_ints,
    check_non_negative,
    check_positive,
)


def test_ints():
    assert check_int(3, "n", "w") == 3 and check_int(0, "n", "w", least=0) == 0
    with pytest.raises(ValueError, match=r"^w: n must be a positive int, got 0$"):
        check_int(0, "n", "w")
    with pytest.raises(ValueError, match=r"^w: n must be an int >= 0, got -1$"):
        check_int(-1, "n", "w", least=0)
    for bad in (True, 2.0, "2", None):
        with pytest.raises(ValueError, match="must be a positive int"):
            check_int(bad, "n", "w")
    check_ints("w", a=1, b=2)
    with pytest.raises(ValueError, match=r"^w: b must be a positive int, got 0$"):
        check_ints("w", a=1, b=0)


def test_numbers():
    assert check_positive(2, "t") == 2.0 and isinstance(check_positive(2, "t"), float)
    with pytest.raises(ValueError, match=r"^t must be a positive finite number, got 0.0$"):
        check_positive(0, "t")
    with pytest.raises(ValueError, match=r"^loss: t must be a positive finite number, got inf$"):
        check_positive(math.inf, "t", "loss")
    assert check_non_negative(0, "w", "x") == 0.0
    with pytest.raises(ValueError, match=r"^x: w must be a finite number >= 0, got -1.0$"):
        check_non_negative(-1, "w", "x")
    assert check_fraction(1, "p", "v") == 1.0
    with pytest.raises(ValueError, match=r"^v: p must lie in \[0, 1\], got 1.5$"):
        check_fraction(1.5, "p", "v")
    for check in (check_positive, check_fraction):
        with pytest.raises(ValueError, match="got True"):  # a bool is not a number here
            check(True, "x", "w")
        with pytest.raises(ValueError, match="got nan"):
            check(math.nan, "x", "w")
        with pytest.raises(ValueError, match="got 'a'"):
            check("a", "x", "w")


def test_choices():
    assert check_choice("dense", ("dense", "tiled"), "engine", "loss") == "dense"
    with pytest.raises(ValueError, match=r"^loss: unknown engine 'tiles'; did you mean 'tiled'\?"):
        check_choice("tiles", ("dense", "tiled"), "engine", "loss")
    with pytest.raises(ValueError, match=r"unknown engine 3 \(choose from 'dense', 'tiled'\)"):
        check_choice(3, ("dense", "tiled"), "engine", "loss")
