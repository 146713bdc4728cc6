"""The contract checks of manyview.testing, run over everything in the registry: a newly
registered loss, view or encoder is checked here with no new test."""

from __future__ import annotations

import pytest

import manyview
from manyview.testing import (
    LOSS_CHECKS,
    build,
    check_encoder,
    check_loss_small_temperature,
    check_teacher,
    check_view,
)

LOSSES = manyview.available("loss")


@pytest.mark.parametrize("check", list(LOSS_CHECKS))
@pytest.mark.parametrize("name", LOSSES)
def test_loss_contract(name, check):
    LOSS_CHECKS[check](build("loss", name))


@pytest.mark.parametrize("name", LOSSES)
def test_loss_no_overflow_at_eight_views_and_small_temperature(name):
    """docs/losses.md, "The contract": nothing overflows at M = 8 and temperature 0.05."""
    factory = manyview.entry("loss", name).load()
    import inspect

    params = inspect.signature(factory).parameters
    kwargs = {}
    if "temperature" in params or name == "pwe":
        kwargs["temperature"] = 0.05
    if "tau_init" in params:
        kwargs.update(tau_init=0.05, tau_min=0.05)
    check_loss_small_temperature(build("loss", name, **kwargs), m=8)


@pytest.mark.parametrize("name", manyview.available("view"))
def test_view_contract(name):
    check_view(build("view", name))


@pytest.mark.parametrize("name", manyview.available("teacher"))
def test_teacher_contract(name):
    check_teacher(build("teacher", name))


@pytest.mark.parametrize("name", manyview.available("encoder"))
def test_encoder_contract(name):
    check_encoder(build("encoder", name))


def test_every_loss_has_a_docstring_with_inputs():
    for name in LOSSES:
        doc = manyview.entry("loss", name).load().__doc__ or ""
        assert "Inputs" in doc or "Args" in doc, f"{name}: docstring lacks Args/Inputs"
