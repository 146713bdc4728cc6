"""SupReMix (``docs/losses.md`` "supremix") against the naive float64 reference
``reference.supremix``.

The library's loss is built with a fixed λ (``neg_beta`` a float), so it is deterministic and
the reference can use the same λ for every hard-negative mixture. Values must agree to
rtol 1e-9 / atol 1e-10 on integer-valued labels (ties: real positives; differences equal to
the window: boundary of the hard positives) and real-valued labels, for M = 1 to 4.

Gradient convention. The library builds the mixtures from DETACHED embeddings, so the loss
it differentiates is the reference with its mixtures' building blocks frozen: with
``mix_z = x0`` fixed (the embeddings at the evaluation point), the reference
``supremix(x, y, ..., mix_z=x0)`` is a function of x in which only the anchor side of a
mixture similarity <x_a, λ·x0_a + (1−λ)·x0_k> and the real similarities <x_a, x_c> move.
At x = x0 it equals the loss, and its gradient there is exactly what autograd of the library
gives (the anchor receives the mixture vector, the mixture's rows receive nothing). The tests
compare autograd with central finite differences of that frozen reference, and check that the
unfrozen reference (mixtures moving with x) has a different gradient, so the freezing is
really exercised.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

import manyview

from . import reference as R
from ._helpers import assert_loss_close, raw_views, unit

# (N, M, D, τ, λ, window, weighting, labels)
CASES: list[tuple[int, int, int, float, float, float, str, list[float]]] = [
    # integer labels, ties, every pair inside the window
    (4, 2, 5, 0.3, 0.2, 5.0, "l1", [1.0, 2.0, 3.0, 2.0]),
    (2, 2, 3, 0.1, 0.5, 5.0, "l1", [0.0, 1.0]),
    # integer labels with differences equal to the window (excluded: strict inequality)
    (6, 2, 4, 0.05, 0.3, 2.0, "l1", [0.0, 1.0, 2.0, 2.0, 4.0, 3.0]),
    (5, 3, 4, 0.5, 0.7, 2.0, "l2", [0.0, 2.0, 1.0, 4.0, 2.0]),
    (4, 4, 6, 0.1, 0.0, 5.0, "none", [3.0, 3.0, 1.0, 7.0]),
    (3, 3, 3, 1.0, 1.0, 5.0, "l2", [1.0, 2.0, 3.0]),
    # real-valued labels, no ties (with M = 1 the only positives are the hard positives)
    (6, 1, 5, 0.3, 0.25, 5.0, "l1", [0.3, 2.9, 1.7, 4.15, 0.95, 2.2]),
    (5, 2, 8, 0.1, 0.6, 1.5, "l2", [0.5, 1.7, 3.2, 1.1, 2.9]),
    (7, 1, 4, 0.2, 0.4, 3.0, "none", [-1.25, 0.5, 2.0, -0.3, 1.1, 3.7, 0.05]),
    # real-valued labels with ties
    (5, 3, 3, 0.5, 0.35, 1.0, "l1", [0.25, 0.75, 0.25, 1.5, 0.75]),
]


def _case_id(case: tuple[Any, ...]) -> str:
    n, m, d, tau, lam, window, weighting, _ = case
    return f"N{n}-M{m}-D{d}-t{tau}-lam{lam}-w{window}-{weighting}"


def _loss(tau: float, lam: float, window: float, weighting: str, **kwargs: Any) -> torch.nn.Module:
    return manyview.create(
        "loss",
        "supremix",
        temperature=tau,
        neg_beta=lam,
        window=window,
        weighting=weighting,
        **kwargs,
    )


def _seed(case: tuple[Any, ...]) -> int:
    n, m, d, tau, *_ = case
    return 31 * n + 7 * m + d + int(100 * tau)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_supremix_matches_reference(case: tuple[Any, ...]) -> None:
    n, m, d, tau, lam, window, weighting, labels = case
    raw = raw_views(n, m, d, _seed(case))
    y = torch.tensor(labels, dtype=torch.float64)
    expected = R.supremix(unit(raw), y, tau, lam, window, weighting)
    loss = _loss(tau, lam, window, weighting)
    assert_loss_close(loss(raw, labels=y), expected)  # normalize=True on raw views
    assert_loss_close(loss(unit(raw), labels=y), expected)
    assert_loss_close(loss(list(raw.unbind(1)), labels=y), expected)


@pytest.mark.parametrize("case", CASES[:3] + CASES[6:8], ids=_case_id)
def test_supremix_without_normalisation(case: tuple[Any, ...]) -> None:
    """normalize=False on raw views: the reference (which never normalises) sees them too."""
    n, m, d, tau, lam, window, weighting, labels = case
    raw = raw_views(n, m, d, _seed(case) + 1, spread=1.0)
    y = torch.tensor(labels, dtype=torch.float64)
    loss = _loss(tau, lam, window, weighting, normalize=False)
    assert_loss_close(loss(raw, labels=y), R.supremix(raw, y, tau, lam, window, weighting))


def test_supremix_integer_label_tensor() -> None:
    raw = raw_views(5, 2, 4, 3)
    y = torch.tensor([0, 3, 1, 3, 2])
    expected = R.supremix(unit(raw), y.double(), 0.2, 0.3, 5.0, "l1")
    assert_loss_close(_loss(0.2, 0.3, 5.0, "l1")(raw, labels=y), expected)


def test_supremix_no_positives_is_zero() -> None:
    """M = 1, labels 10 apart with window 5: no real and no hard positive for any anchor."""
    raw = raw_views(5, 1, 4, 4)
    y = torch.tensor([0.0, 10.0, 20.0, 30.0, 40.0], dtype=torch.float64)
    assert R.supremix(unit(raw), y, 0.3, 0.2) == 0.0
    value = _loss(0.3, 0.2, 5.0, "l1")(raw, labels=y)
    assert torch.isfinite(value)
    assert_loss_close(value, 0.0)


def test_supremix_some_anchors_without_positives() -> None:
    """M = 1, distinct labels: the smallest and largest labels have no hard positive; they
    contribute 0 and still count in the mean over the R anchors."""
    raw = raw_views(4, 1, 3, 5)
    y = torch.tensor([0.0, 1.0, 2.0, 3.0], dtype=torch.float64)
    expected = R.supremix(unit(raw), y, 0.3, 0.2)
    # the two middle anchors alone, times 2/4
    assert_loss_close(_loss(0.3, 0.2, 5.0, "l1")(raw, labels=y), expected)
    assert expected != 0.0


def test_supremix_reference_reduces_to_supcon_on_equal_labels() -> None:
    """With every label equal there are no mixtures and every weight is 1: SupCon L_out."""
    z = unit(raw_views(4, 3, 5, 6))
    y = [2.0] * 4
    for weighting in ("l1", "l2", "none"):
        value = R.supremix(z, y, 0.2, 0.3, weighting=weighting)
        expected = R.supcon(z, 0.2, labels=[0] * 4)
        assert abs(value - expected) <= 1e-12 * abs(expected)


# --------------------------------------------------------------------------------------------
# gradients
# --------------------------------------------------------------------------------------------


def _finite_difference(
    f: Callable[[torch.Tensor], float], x: torch.Tensor, h: float = 1e-5
) -> torch.Tensor:
    grad = torch.zeros_like(x)
    flat = grad.view(-1)
    for k in range(x.numel()):
        step = torch.zeros(x.numel(), dtype=x.dtype)
        step[k] = h
        step = step.view_as(x)
        flat[k] = (f(x + step) - f(x - step)) / (2 * h)
    return grad


GRAD_CASES = [
    (4, 2, 3, 0.3, 0.2, 5.0, "l1", [0.0, 1.0, 2.0, 1.0]),
    (3, 3, 4, 0.5, 0.6, 2.5, "l2", [0.4, 1.9, 1.1]),
    (5, 1, 3, 0.2, 0.35, 5.0, "none", [0.0, 2.0, 1.0, 2.0, 3.5]),
]


@pytest.mark.parametrize("case", GRAD_CASES, ids=_case_id)
def test_supremix_gradient_normalised_inputs(case: tuple[Any, ...]) -> None:
    """normalize=False on unit-norm inputs: autograd equals the frozen-mixture reference's
    finite differences, and differs from the unfrozen reference's."""
    n, m, d, tau, lam, window, weighting, labels = case
    x0 = unit(raw_views(n, m, d, _seed(case) + 2))
    y = torch.tensor(labels, dtype=torch.float64)
    x = x0.clone().requires_grad_(True)
    _loss(tau, lam, window, weighting, normalize=False)(x, labels=y).backward()
    assert x.grad is not None

    def frozen(v: torch.Tensor) -> float:
        return R.supremix(v, y, tau, lam, window, weighting, mix_z=x0)

    expected = _finite_difference(frozen, x0)
    assert torch.allclose(x.grad, expected, rtol=1e-6, atol=1e-8), (x.grad - expected).abs().max()

    moving = _finite_difference(lambda v: R.supremix(v, y, tau, lam, window, weighting), x0)
    assert (moving - expected).abs().max() > 1e-3


@pytest.mark.parametrize("case", GRAD_CASES[:2], ids=_case_id)
def test_supremix_gradient_through_normalisation(case: tuple[Any, ...]) -> None:
    """normalize=True on raw inputs: the mixtures are frozen at unit(raw)."""
    n, m, d, tau, lam, window, weighting, labels = case
    raw = raw_views(n, m, d, _seed(case) + 3)
    y = torch.tensor(labels, dtype=torch.float64)
    x = raw.clone().requires_grad_(True)
    _loss(tau, lam, window, weighting)(x, labels=y).backward()
    assert x.grad is not None
    frozen_at = unit(raw)

    def frozen(v: torch.Tensor) -> float:
        return R.supremix(unit(v), y, tau, lam, window, weighting, mix_z=frozen_at)

    expected = _finite_difference(frozen, raw)
    assert torch.allclose(x.grad, expected, rtol=1e-6, atol=1e-8), (x.grad - expected).abs().max()


def test_supremix_gradient_without_mixtures() -> None:
    """With every label equal there is no mixture at all and nothing is detached: autograd
    equals the finite differences of the plain (unfrozen) reference."""
    raw = raw_views(3, 3, 4, 9)
    y = torch.full((3,), 1.5, dtype=torch.float64)
    x = raw.clone().requires_grad_(True)
    _loss(0.3, 0.4, 5.0, "l1")(x, labels=y).backward()
    assert x.grad is not None
    expected = _finite_difference(lambda v: R.supremix(unit(v), y, 0.3, 0.4), raw)
    assert torch.allclose(x.grad, expected, rtol=1e-6, atol=1e-8), (x.grad - expected).abs().max()


# --------------------------------------------------------------------------------------------
# λ sampling and argument checks
# --------------------------------------------------------------------------------------------


def test_supremix_beta_sampling_is_seeded() -> None:
    raw = raw_views(5, 2, 4, 10)
    y = torch.tensor([0.0, 1.0, 2.0, 1.0, 3.0], dtype=torch.float64)
    loss = manyview.create("loss", "supremix", neg_beta=(2.0, 8.0))
    torch.manual_seed(0)
    first = loss(raw, labels=y)
    torch.manual_seed(0)
    again = loss(raw, labels=y)
    assert torch.equal(first, again)
    assert torch.isfinite(first)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"weighting": "l3"},
        {"neg_beta": 1.5},
        {"neg_beta": -0.1},
        {"neg_beta": (2.0, 0.0)},
        {"neg_beta": (1.0, 2.0, 3.0)},
        {"temperature": 0.0},
    ],
)
def test_supremix_rejects_bad_arguments(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        manyview.create("loss", "supremix", **kwargs)


def test_supremix_needs_labels() -> None:
    with pytest.raises(ValueError, match="labels"):
        manyview.create("loss", "supremix")(raw_views(3, 2, 4, 11))
