"""The library's losses and metrics against the naive float64 references in ``reference.py``.

Each loss is built with ``manyview.create("loss", name, ...)`` and called on float64 views:
un-normalised (checking the ``normalize=True`` default), already normalised, as a list of M
(N, D) tensors, and with ``normalize=False`` on raw inputs (the reference never normalises,
so it then sees the raw inner products too). Values must agree to rtol 1e-9 / atol 1e-10.
Gradients are checked against central finite differences of the reference.

Every loss with an ``engine`` option is checked twice: as constructed by default (dense at
these sizes) and with ``engine="tiled"`` (``manyview.losses.engine``) at tiny, ragged tiles.

The identities that ``docs/losses.md`` states (its "mv_infonce", "mv_dhel and dhel" and
"supcon" sections) are checked on the library's values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest
import torch

import manyview
from manyview.losses.engine import EngineConfig

from . import reference as R
from ._helpers import assert_loss_close, assert_scalar_close, raw_views, unit

# (N, M, D, τ): M = 2, 3, 4; N from 2 to 9; τ in {0.05, 0.1, 0.5}.
CASES: list[tuple[int, int, int, float]] = [
    (2, 2, 3, 0.1),
    (5, 2, 8, 0.05),
    (9, 2, 16, 0.5),
    (3, 3, 5, 0.5),
    (7, 3, 8, 0.1),
    (6, 3, 4, 0.05),
    (4, 4, 6, 0.05),
    (8, 4, 12, 0.1),
]
TWO_VIEW_CASES = [case for case in CASES if case[1] == 2]


def _case_id(case: tuple[int, int, int, float]) -> str:
    n, m, d, tau = case
    return f"N{n}-M{m}-D{d}-t{tau}"


def _seed(case: tuple[int, int, int, float], salt: int = 0) -> int:
    n, m, d, tau = case
    return 1000 * n + 100 * m + d + int(1000 * tau) + 7919 * salt


@dataclass(frozen=True)
class Spec:
    """One loss configuration: registry name, create() keywords and the matching reference."""

    name: str
    kwargs: Mapping[str, Any]
    reference: Callable[..., float]
    two_view_only: bool = False

    @property
    def id(self) -> str:
        args = ",".join(f"{k}={v}" for k, v in self.kwargs.items())
        return f"{self.name}({args})"

    def create(self, tau: float, **extra: Any) -> torch.nn.Module:
        return manyview.create("loss", self.name, temperature=tau, **self.kwargs, **extra)


SPECS: list[Spec] = [
    Spec("infonce", {}, R.infonce),
    Spec("pwe", {"base": "infonce"}, R.pwe),
    Spec("pwe", {"base": "dhel"}, partial(R.pwe, base=R.dhel)),
    Spec("mv_infonce", {}, R.mv_infonce),  # default: intra-view negatives, as the code
    Spec("mv_infonce", {"intra_view_negatives": True}, R.mv_infonce),
    Spec(
        "mv_infonce",
        {"intra_view_negatives": False},
        partial(R.mv_infonce, intra_view_negatives=False),
    ),
    Spec("mv_dhel", {}, R.mv_dhel),
    Spec("dhel", {}, R.dhel, two_view_only=True),
    Spec("pvc", {}, R.pvc),  # default: geometric
    Spec("pvc", {"method": "geometric"}, partial(R.pvc, method="geometric")),
    Spec("pvc", {"method": "arithmetic"}, partial(R.pvc, method="arithmetic")),
    Spec("dcl", {}, R.dcl),
    Spec("dclw", {}, partial(R.dcl, weighted=True)),  # default σ = 0.5
    Spec("dclw", {"sigma": 0.3}, partial(R.dcl, weighted=True, sigma=0.3)),
    Spec("supcon", {}, R.supcon),  # no labels: SimCLR positives; default variant "out"
    Spec("supcon", {"variant": "in"}, partial(R.supcon, variant="in")),
    Spec("supcon", {"base_temperature": 0.07}, partial(R.supcon, base_temperature=0.07)),
]


@pytest.fixture(params=["default", "tiled"])
def engine(request: pytest.FixtureRequest) -> dict[str, EngineConfig]:
    """The create() keywords of the engine under test; ``"tiled"`` at 4 x 7 tiles, so
    that every batch here spans several, ragged tiles."""
    if request.param == "default":
        return {}
    return {"engine": EngineConfig("tiled", tile=(4, 7))}


def _spec_cases() -> list[Any]:
    params = []
    for spec in SPECS:
        for case in CASES:
            if spec.two_view_only and case[1] != 2:
                continue
            params.append(pytest.param(spec, case, id=f"{spec.id}-{_case_id(case)}"))
    return params


def _one_case_per_spec(m_views: int) -> list[Any]:
    params = []
    for spec in SPECS:
        m = 2 if spec.two_view_only else m_views
        params.append(pytest.param(spec, m, id=spec.id))
    return params


# --------------------------------------------------------------------------------------------
# values
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "case"), _spec_cases())
def test_loss_matches_reference(
    spec: Spec, case: tuple[int, int, int, float], engine: dict[str, str]
) -> None:
    n, m, d, tau = case
    raw = raw_views(n, m, d, _seed(case))
    z = unit(raw)
    expected = spec.reference(z, tau)
    loss = spec.create(tau, **engine)
    assert_loss_close(loss(raw), expected)  # normalize=True is the default
    assert_loss_close(loss(z), expected)


@pytest.mark.parametrize(("spec", "m"), _one_case_per_spec(3))
def test_loss_accepts_list_of_views(spec: Spec, m: int, engine: dict[str, str]) -> None:
    tau = 0.1
    raw = raw_views(5, m, 6, seed=11)
    loss = spec.create(tau, **engine)
    assert_loss_close(loss(list(raw.unbind(dim=1))), spec.reference(unit(raw), tau))


@pytest.mark.parametrize(("spec", "m"), _one_case_per_spec(3))
def test_loss_without_normalisation(spec: Spec, m: int, engine: dict[str, str]) -> None:
    # Norms in [0.5, 1.5]: the loss must use the raw inner products.
    tau = 0.1
    raw = raw_views(6, m, 5, seed=12, spread=1.0)
    loss = spec.create(tau, normalize=False, **engine)
    assert_loss_close(loss(raw), spec.reference(raw, tau))


# --------------------------------------------------------------------------------------------
# gradients (central finite differences of the reference)
# --------------------------------------------------------------------------------------------


def _finite_difference(
    f: Callable[[torch.Tensor], float], x: torch.Tensor, h: float
) -> torch.Tensor:
    grad = torch.zeros_like(x)
    flat = grad.view(-1)
    for k in range(x.numel()):
        step = torch.zeros_like(x).view(-1)
        step[k] = h
        step = step.view_as(x)
        flat[k] = (f(x + step) - f(x - step)) / (2 * h)
    return grad


@pytest.mark.parametrize(("spec", "m"), _one_case_per_spec(3))
def test_loss_gradient_matches_finite_differences(
    spec: Spec, m: int, engine: dict[str, str]
) -> None:
    tau = 0.5
    raw = raw_views(3, m, 4, seed=13)
    reference = spec.reference
    if spec.name == "dclw":
        # The vMF weights are constants for the gradient (docs/losses.md, "dcl and dclw" and
        # "Deviations from the official code": detached by default), so the finite
        # differences freeze them at the evaluation point.
        reference = partial(reference, weight_z=unit(raw))
    x = raw.clone().requires_grad_(True)
    spec.create(tau, **engine)(x).backward()
    expected = _finite_difference(lambda y: reference(unit(y), tau), raw, h=1e-5)
    assert x.grad is not None
    assert torch.allclose(x.grad, expected, rtol=1e-6, atol=1e-8), (x.grad - expected).abs().max()


# --------------------------------------------------------------------------------------------
# SupCon with labels and masks
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["out", "in"])
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_supcon_labels(
    case: tuple[int, int, int, float], variant: str, engine: dict[str, str]
) -> None:
    n, m, d, tau = case
    raw = raw_views(n, m, d, _seed(case, 1))
    labels = torch.randint(0, 3, (n,), generator=torch.Generator().manual_seed(_seed(case)))
    loss = manyview.create("loss", "supcon", temperature=tau, variant=variant, **engine)
    expected = R.supcon(unit(raw), tau, labels=labels, variant=variant)
    assert_loss_close(loss(raw, labels=labels), expected)


@pytest.mark.parametrize("variant", ["out", "in"])
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_supcon_mask(
    case: tuple[int, int, int, float], variant: str, engine: dict[str, str]
) -> None:
    # An arbitrary, asymmetric N×N mask, tiled over views; instance 0 has no positive at all,
    # so its M anchors contribute 0 but still count in the mean.
    n, m, d, tau = case
    raw = raw_views(n, m, d, _seed(case, 2))
    gen = torch.Generator().manual_seed(_seed(case, 3))
    mask = torch.rand(n, n, generator=gen) < 0.4
    mask[0] = False
    loss = manyview.create(
        "loss", "supcon", temperature=tau, variant=variant, base_temperature=0.07, **engine
    )
    if engine and variant == "in":  # L_in with a mask has no tiled form
        with pytest.raises(ValueError, match="engine='dense'"):
            loss(raw, mask=mask)
        return
    expected = R.supcon(unit(raw), tau, mask=mask, variant=variant, base_temperature=0.07)
    assert_loss_close(loss(raw, mask=mask), expected)


@pytest.mark.parametrize("variant", ["out", "in"])
def test_supcon_single_view_with_zero_positive_anchor(variant: str, engine: dict[str, str]) -> None:
    # M = 1 (plain supervised contrastive learning); label 3 is a singleton, so that anchor
    # has no positive.
    tau = 0.1
    raw = raw_views(7, 1, 5, seed=14)
    labels = torch.tensor([0, 1, 0, 2, 1, 2, 3])
    loss = manyview.create("loss", "supcon", temperature=tau, variant=variant, **engine)
    expected = R.supcon(unit(raw), tau, labels=labels, variant=variant)
    assert_loss_close(loss(raw, labels=labels), expected)


# --------------------------------------------------------------------------------------------
# CLIP and SigLIP
# --------------------------------------------------------------------------------------------
# A fixed scale is a Python float (exact in float64); a learnable one lives in a float32
# parameter, so float64 inputs see the float32-rounded scale: those comparisons use the
# parameter's effective value, plus one check against the nominal value to float32 precision.

FLOAT32_RTOL = 1e-6


def _effective(module: torch.nn.Module, attribute: str) -> float:
    return float(getattr(module, attribute).detach().double())


@pytest.mark.parametrize("case", TWO_VIEW_CASES, ids=_case_id)
def test_clip_matches_reference(case: tuple[int, int, int, float], engine: dict[str, str]) -> None:
    n, m, d, tau = case
    raw = raw_views(n, m, d, _seed(case, 4))
    z = unit(raw)
    loss = manyview.create("loss", "clip", temperature=tau, **engine)
    assert_loss_close(loss(raw), R.clip(z, 1.0 / tau))
    assert_loss_close(loss(list(raw.unbind(dim=1))), R.clip(z, 1.0 / tau))
    raw_small = raw_views(n, m, d, _seed(case, 5), spread=1.0)
    unnormalised = manyview.create("loss", "clip", temperature=tau, normalize=False, **engine)
    assert_loss_close(unnormalised(raw_small), R.clip(raw_small, 1.0 / tau))
    learnable = manyview.create("loss", "clip", temperature=tau, learnable=True, **engine)
    scale = math.exp(_effective(learnable, "logit_scale"))
    assert_loss_close(learnable(raw), R.clip(z, scale))
    assert_loss_close(learnable(raw), R.clip(z, 1.0 / tau), rtol=FLOAT32_RTOL, atol=0.0)


@pytest.mark.parametrize(("scale", "bias"), [(10.0, -10.0), (3.0, 0.5)])
@pytest.mark.parametrize("case", TWO_VIEW_CASES, ids=_case_id)
def test_siglip_matches_reference(
    case: tuple[int, int, int, float], scale: float, bias: float
) -> None:
    n, m, d, _ = case
    raw = raw_views(n, m, d, _seed(case, 6))
    z = unit(raw)
    loss = manyview.create("loss", "siglip", scale=scale, bias=bias)
    eff_scale = math.exp(_effective(loss, "logit_scale"))
    eff_bias = _effective(loss, "logit_bias")
    assert_loss_close(loss(raw), R.siglip(z, eff_scale, eff_bias))
    assert_loss_close(loss(list(raw.unbind(dim=1))), R.siglip(z, eff_scale, eff_bias))
    assert_loss_close(loss(raw), R.siglip(z, scale, bias), rtol=FLOAT32_RTOL, atol=0.0)
    fixed = manyview.create("loss", "siglip", scale=scale, bias=bias, learnable=False)
    assert_loss_close(fixed(raw), R.siglip(z, scale, bias))


# --------------------------------------------------------------------------------------------
# identities from docs/losses.md, on the library's values
# --------------------------------------------------------------------------------------------


def _loss(name: str, views: torch.Tensor, tau: float, **kwargs: Any) -> torch.Tensor:
    return manyview.create("loss", name, temperature=tau, **kwargs)(views)


@pytest.mark.parametrize("case", TWO_VIEW_CASES, ids=_case_id)
def test_mv_dhel_two_views_is_dhel(case: tuple[int, int, int, float]) -> None:
    n, m, d, tau = case
    raw = raw_views(n, m, d, _seed(case, 7))
    assert_loss_close(_loss("mv_dhel", raw, tau), _loss("dhel", raw, tau).item())


@pytest.mark.parametrize("case", TWO_VIEW_CASES, ids=_case_id)
def test_mv_infonce_two_views_closed_form(case: tuple[int, int, int, float]) -> None:
    # docs/losses.md "mv_infonce": at M = 2, loss_i = −s_ii^{12}/τ + log(½(D_i^1 + D_i^2)),
    # D_i^m SimCLR's partition function of anchor (m, i): Σ over every other row of exp(s/τ).
    # Computed here by loops.
    n, m, d, tau = case
    raw = raw_views(n, m, d, _seed(case, 8))
    s = R.similarities(unit(raw))
    terms = []
    for i in range(n):
        partition = [
            math.fsum(
                math.exp(s[i][a][j][b] / tau)
                for j in range(n)
                for b in range(2)
                if (j, b) != (i, a)
            )
            for a in range(2)
        ]
        terms.append(-s[i][0][i][1] / tau + math.log(0.5 * (partition[0] + partition[1])))
    assert_loss_close(_loss("mv_infonce", raw, tau), R.mean(terms))


@pytest.mark.parametrize("case", TWO_VIEW_CASES, ids=_case_id)
def test_infonce_at_most_mv_infonce_two_views(case: tuple[int, int, int, float]) -> None:
    # docs/losses.md "mv_infonce": arithmetic vs geometric mean of the two anchors' partition
    # functions (Jensen).
    n, m, d, tau = case
    raw = raw_views(n, m, d, _seed(case, 9))
    assert _loss("infonce", raw, tau).item() <= _loss("mv_infonce", raw, tau).item() + 1e-12


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_supcon_without_labels_is_infonce(case: tuple[int, int, int, float]) -> None:
    n, m, d, tau = case
    raw = raw_views(n, m, d, _seed(case, 10))
    infonce = _loss("infonce", raw, tau).item()
    assert_loss_close(_loss("supcon", raw, tau), infonce)
    supcon = manyview.create("loss", "supcon", temperature=tau)
    assert_loss_close(supcon(raw, labels=torch.arange(n)), infonce)  # all labels distinct
    assert_loss_close(supcon(raw, mask=torch.eye(n, dtype=torch.bool)), infonce)


@pytest.mark.parametrize("case", TWO_VIEW_CASES, ids=_case_id)
def test_two_view_reductions_to_infonce(case: tuple[int, int, int, float]) -> None:
    # PWE over the single pair is the base loss; PVC at M = 2 has SimCLR's denominator, and
    # its two aggregations coincide with a single target view.
    n, m, d, tau = case
    raw = raw_views(n, m, d, _seed(case, 11))
    infonce = _loss("infonce", raw, tau).item()
    assert_loss_close(_loss("pwe", raw, tau, base="infonce"), infonce)
    assert_loss_close(_loss("pvc", raw, tau, method="geometric"), infonce)
    assert_loss_close(_loss("pvc", raw, tau, method="arithmetic"), infonce)


@pytest.mark.parametrize("m", [2, 3, 4])
def test_dclw_with_tied_positives_is_dcl(m: int) -> None:
    # Equal positive similarities (identical views) make every vMF weight exactly 1.
    tau = 0.1
    raw = raw_views(5, 1, 6, seed=15).expand(5, m, 6).clone()
    raw[:, 1:] *= 2.0  # same directions, other norms
    assert_loss_close(_loss("dclw", raw, tau), _loss("dcl", raw, tau).item())


# --------------------------------------------------------------------------------------------
# metrics (docs/losses.md "Diagnostics"): on the embeddings as given, not normalised
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metric", "option", "value", "salt"),
    [
        ("alignment", "alpha", 2.0, 12),
        ("alignment", "alpha", 1.0, 12),
        ("alignment", "alpha", 3.0, 12),
        ("uniformity", "t", 2.0, 13),
        ("uniformity", "t", 0.5, 13),
    ],
)
@pytest.mark.parametrize("case", CASES[::2], ids=_case_id)
def test_alignment_and_uniformity_match_reference(
    case: tuple[int, int, int, float], metric: str, option: str, value: float, salt: int
) -> None:
    import manyview.metrics

    ours, reference = getattr(manyview.metrics, metric), getattr(R, metric)
    n, m, d, _ = case
    raw = raw_views(n, m, d, _seed(case, salt))
    if value == 2.0:  # both metrics' default
        assert_scalar_close(ours(raw), reference(raw))
        assert_scalar_close(ours(unit(raw)), reference(unit(raw)))
    kwargs = {option: value}
    assert_scalar_close(ours(raw, **kwargs), reference(raw, **kwargs))


@pytest.mark.parametrize(("n", "d", "rank"), [(10, 6, 6), (12, 8, 3), (5, 9, 5)])
def test_effective_rank_matches_reference(n: int, d: int, rank: int) -> None:
    from manyview.metrics import effective_rank

    x = raw_views(n, 1, rank, seed=16 + n)[:, 0] @ raw_views(rank, 1, d, seed=17 + d)[:, 0]
    # eps = 0: the exact definition (the default eps is left to the library).
    value = effective_rank(x, eps=0.0)
    assert isinstance(value, float)
    assert_scalar_close(value, R.effective_rank(x), atol=1e-9)
    assert 1.0 - 1e-9 <= value <= rank + 1e-9
    centred = x - x.mean(dim=0, keepdim=True)
    assert_scalar_close(
        effective_rank(x, center=True, eps=0.0), R.effective_rank(centred), atol=1e-9
    )
    assert_scalar_close(effective_rank(x, center=False, eps=0.0), value)
    # RankMe / DHEL-code smoothing: p ← (σ/‖σ‖₁ + eps), renormalised.
    assert_scalar_close(effective_rank(x, eps=1e-7), R.effective_rank(x, eps=1e-7), atol=1e-9)
    assert_scalar_close(
        effective_rank(x, eps=0.0, on="cov_eig"), R.effective_rank(x, on="cov_eig"), atol=1e-9
    )


def test_effective_rank_of_equal_singular_values() -> None:
    from manyview.metrics import effective_rank

    x = torch.zeros(6, 4, dtype=torch.float64)
    x[:3, :3] = 2.0 * torch.eye(3, dtype=torch.float64)
    assert_scalar_close(effective_rank(x, eps=0.0), 3.0)
    assert_scalar_close(effective_rank(x, eps=0.0, on="cov_eig"), 3.0)
