"""iSogCLR (``docs/losses.md`` "isogclr") against the naive float64 step
``reference.isogclr_step``.

The module is stateful: per dataset sample it keeps τ, the moving average u of the partition
function (as ``log_u``), the τ momentum and a ``seen`` flag, and updates them once per
training forward. The tests run the module and the reference side by side over consecutive
steps with overlapping indices and compare the loss, every buffer and ``last_objective``.
Converted with ``.double()``, the module keeps its state in float64 and must agree to
rtol 1e-9; with its default float32 buffers, to rtol 1e-5.

The loss is a surrogate whose value is not F; its gradient is checked (with γ = 1, so that
u = g on the batch) against autograd of the F-term Σ_m mean_i τ_i·log((1/|S⁻|) Σ_z
exp(h/τ_i)), written here in torch with explicit loops, at fixed τ.

The reference comparisons run for both engines: the dense (MN x MN) form and
``engine="tiled"`` (``manyview.losses.engine``) at tiny, ragged tiles.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

import manyview
from manyview.losses.engine import EngineConfig

from . import reference as R
from ._helpers import assert_loss_close, assert_scalar_close, raw_views, unit

NUM_SAMPLES = 10
TAU_INIT = 0.1

# Three steps with overlapping dataset indices (first and repeated visits), N = 5, 5, 6.
STEPS: list[list[int]] = [[3, 0, 7, 5, 1], [5, 9, 3, 2, 8], [1, 4, 5, 0, 9, 6]]

CONFIGS: dict[str, dict[str, float]] = {
    # LibAUC-like defaults, γ < 1 so the moving average matters
    "default": {
        "rho": 0.3,
        "gamma": 0.7,
        "beta": 0.6,
        "eta": 0.05,
        "tau_min": 0.05,
        "tau_max": 0.7,
        "grad_clip": 3.0,
    },
    # tight gradient clip and a large ρ and η: τ is driven into tau_min
    "clipped": {
        "rho": 2.0,
        "gamma": 0.4,
        "beta": 0.9,
        "eta": 0.2,
        "tau_min": 0.06,
        "tau_max": 0.7,
        "grad_clip": 0.4,
    },
    # small ρ: τ grows, up to tau_max
    "growing": {
        "rho": 0.0,
        "gamma": 1.0,
        "beta": 1.0,
        "eta": 0.05,
        "tau_min": 0.05,
        "tau_max": 0.25,
        "grad_clip": 3.0,
    },
}


@pytest.fixture(params=["dense", "tiled"])
def engine(request: pytest.FixtureRequest) -> str | EngineConfig:
    """The engine under test; ``"tiled"`` at 4 x 7 tiles (several ragged tiles per batch)."""
    if request.param == "tiled":
        return EngineConfig("tiled", tile=(4, 7))
    return request.param


def _module(config: dict[str, float], **kwargs: Any) -> torch.nn.Module:
    return manyview.create(
        "loss", "isogclr", num_samples=NUM_SAMPLES, tau_init=TAU_INIT, **config, **kwargs
    )


def _double(module: torch.nn.Module) -> torch.nn.Module:
    """``module.double()`` with τ reset to the exact float64 τ_init: the buffers are created
    in float32, so ``.double()`` alone would keep τ_init rounded to float32 (0.1 → 0.1 +
    1.5e-9), a relative error of 1.5e-8 that the float64 comparisons would see."""
    module = module.double()
    assert torch.allclose(module.tau, torch.full_like(module.tau, TAU_INIT), rtol=1e-7)
    with torch.no_grad():
        module.tau.fill_(TAU_INIT)
    return module


def _initial_state() -> dict[str, list[Any]]:
    return {
        "tau": [TAU_INIT] * NUM_SAMPLES,
        "u": [1.0] * NUM_SAMPLES,
        "momentum": [0.0] * NUM_SAMPLES,
        "seen": [False] * NUM_SAMPLES,
    }


def _batch(step: int, m: int, d: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    index = torch.tensor(STEPS[step])
    return raw_views(len(STEPS[step]), m, d, seed=100 * m + step), index


def _assert_state(
    module: torch.nn.Module, state: dict[str, list[Any]], rtol: float, atol: float
) -> None:
    expected = {key: torch.tensor(values, dtype=torch.float64) for key, values in state.items()}
    for got, key in (
        (module.tau, "tau"),
        (module.tau_momentum, "momentum"),
        (module.log_u.exp(), "u"),
    ):
        assert torch.allclose(got.double(), expected[key], rtol=rtol, atol=atol), (
            key,
            got,
            expected[key],
        )
    assert module.seen.tolist() == state["seen"]


@pytest.mark.parametrize("m", [2, 3])
@pytest.mark.parametrize("config", list(CONFIGS), ids=str)
def test_isogclr_steps_match_reference_float64(config: str, m: int, engine: str) -> None:
    module = _double(_module(CONFIGS[config], engine=engine)).train()
    state = _initial_state()
    for step in range(len(STEPS)):
        views, index = _batch(step, m)
        loss = module(views, index=index)
        value, state, objective = R.isogclr_step(unit(views), index, state, **CONFIGS[config])
        assert_loss_close(loss, value)
        assert_scalar_close(module.last_objective, objective, rtol=1e-9, atol=1e-10)
        _assert_state(module, state, rtol=1e-9, atol=1e-12)
    if config == "clipped":
        assert min(state["tau"]) == CONFIGS[config]["tau_min"]
    if config == "growing":
        assert max(state["tau"]) == CONFIGS[config]["tau_max"]


@pytest.mark.parametrize("m", [2, 4])
def test_isogclr_steps_match_reference_float32_buffers(m: int, engine: str) -> None:
    """Default float32 buffers, float64 views: agreement to rtol 1e-5."""
    config = CONFIGS["default"]
    module = _module(config, engine=engine).train()
    state = _initial_state()
    for step in range(len(STEPS)):
        views, index = _batch(step, m)
        loss = module(list(views.unbind(1)), index=index)
        value, state, objective = R.isogclr_step(unit(views), index, state, **config)
        assert_loss_close(loss, value, rtol=1e-5, atol=1e-7)
        assert_scalar_close(module.last_objective, objective, rtol=1e-5, atol=1e-7)
        _assert_state(module, state, rtol=1e-5, atol=1e-7)


def test_isogclr_without_normalisation_matches_reference(engine: str) -> None:
    config = CONFIGS["default"]
    module = _double(_module(config, normalize=False, engine=engine))
    state = _initial_state()
    for step in range(2):
        views, index = _batch(step, 3)
        views = unit(views) * 0.9  # off the sphere: the reference sees the raw products too
        loss = module(views, index=index)
        value, state, objective = R.isogclr_step(views, index, state, **config)
        assert_loss_close(loss, value)
        assert_scalar_close(module.last_objective, objective)
        _assert_state(module, state, rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------------------------
# gradient: the surrogate's gradient is that of F (γ = 1, fixed τ)
# --------------------------------------------------------------------------------------------


def _f_term(z: torch.Tensor, taus: list[float], rho: float) -> torch.Tensor:
    """Σ_m mean_i [τ_i·log((1/|S⁻|) Σ_{(j,l), j≠i} exp((s_ij^{ml} − s̄_i+^m)/τ_i)) + τ_i·ρ]."""
    n, m_views, _ = z.shape
    num_neg = m_views * (n - 1)
    total = z.new_zeros(())
    for m in range(m_views):
        per_instance = []
        for i in range(n):
            tau = taus[i]
            positive = torch.stack(
                [z[i, m] @ z[i, l] for l in range(m_views) if l != m]  # noqa: E741
            ).mean()
            h = torch.stack(
                [
                    z[i, m] @ z[j, l] - positive
                    for j in range(n)
                    if j != i
                    for l in range(m_views)  # noqa: E741
                ]
            )
            per_instance.append(tau * (torch.logsumexp(h / tau, 0) - math.log(num_neg)) + tau * rho)
        total = total + torch.stack(per_instance).mean()
    return total


@pytest.mark.parametrize("m", [2, 3])
def test_isogclr_gradient_is_gradient_of_objective(m: int, engine: str) -> None:
    config = dict(CONFIGS["default"], gamma=1.0)
    module = _double(_module(config, normalize=False, engine=engine)).train()
    with torch.no_grad():
        module.tau.copy_(torch.linspace(0.07, 0.5, NUM_SAMPLES, dtype=torch.float64))
    # a first step, so that the checked step has samples seen before (u = g still, γ = 1)
    views, index = _batch(0, m)
    module(unit(views), index=index)
    views, index = _batch(1, m)
    taus = module.tau[index].tolist()  # the τ the next forward uses (before its update)
    x = unit(views).requires_grad_(True)
    module(x, index=index).backward()
    y = unit(views).requires_grad_(True)
    _f_term(y, taus, config["rho"]).backward()
    assert x.grad is not None and y.grad is not None
    assert torch.allclose(x.grad, y.grad, rtol=1e-9, atol=1e-12), (x.grad - y.grad).abs().max()
    # the objective's value: F = mean over the MN anchor rows = F-term / M
    with torch.no_grad():
        assert_scalar_close(module.last_objective, _f_term(unit(views), taus, config["rho"]) / m)


def test_isogclr_gradient_through_normalisation(engine: str) -> None:
    config = dict(CONFIGS["default"], gamma=1.0)
    module = _double(_module(config, engine=engine)).eval()
    views, index = _batch(2, 3)
    x = views.clone().requires_grad_(True)
    module(x, index=index).backward()
    y = views.clone().requires_grad_(True)
    _f_term(unit(y), [TAU_INIT] * len(index), config["rho"]).backward()
    assert x.grad is not None and y.grad is not None
    assert torch.allclose(x.grad, y.grad, rtol=1e-9, atol=1e-12), (x.grad - y.grad).abs().max()


# --------------------------------------------------------------------------------------------
# state: eval mode, state_dict, the direction of ρ
# --------------------------------------------------------------------------------------------


def _buffers(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: buffer.clone() for name, buffer in module.named_buffers()}


def test_isogclr_eval_mode_keeps_state(engine: str) -> None:
    config = CONFIGS["default"]
    module = _double(_module(config, engine=engine)).train()
    state = _initial_state()
    views, index = _batch(0, 3)
    module(views, index=index)
    _, state, _ = R.isogclr_step(unit(views), index, state, **config)
    before = _buffers(module)
    module.eval()
    views, index = _batch(1, 3)
    for _ in range(2):
        loss = module(views, index=index)
        value, _, objective = R.isogclr_step(unit(views), index, state, **config)
        assert_loss_close(loss, value)
        assert_scalar_close(module.last_objective, objective)
    after = _buffers(module)
    assert before.keys() == after.keys() == {"tau", "log_u", "tau_momentum", "seen"}
    for name in before:
        assert torch.equal(before[name], after[name]), name


@pytest.mark.parametrize("double", [False, True])
def test_isogclr_state_dict_round_trip(double: bool) -> None:
    config = CONFIGS["default"]
    trained = _module(config).train()
    if double:
        trained = trained.double()
    for step in range(2):
        views, index = _batch(step, 3)
        trained(views, index=index)
    fresh = _module(config).train()
    if double:
        fresh = fresh.double()
    untouched = _module(config).train()
    fresh.load_state_dict(trained.state_dict())
    views, index = _batch(2, 3)
    expected = trained(views, index=index)
    got = fresh(views, index=index)
    assert torch.equal(got, expected)
    assert torch.equal(fresh.last_objective, trained.last_objective)
    for (name, a), (_, b) in zip(fresh.named_buffers(), trained.named_buffers(), strict=True):
        assert torch.equal(a, b), name
    # the loaded state matters: a module without it gives a different loss
    assert not torch.allclose(untouched(views, index=index), expected)


def test_isogclr_larger_rho_gives_smaller_tau() -> None:
    """docs/losses.md "isogclr": a larger ρ gives a smaller τ (more weight on the hard
    negatives)."""
    views, index = _batch(0, 2)
    learned = {}
    for rho in (0.1, 1.0):
        config = dict(CONFIGS["default"], rho=rho, eta=0.02, tau_min=0.01, tau_max=1.0)
        module = manyview.create(
            "loss", "isogclr", num_samples=NUM_SAMPLES, tau_init=0.3, **config
        ).train()
        for _ in range(5):
            module(views, index=index)
        learned[rho] = module.tau[index]
        assert ((learned[rho] > 0.01) & (learned[rho] < 1.0)).all()  # not at a bound
    assert (learned[1.0] < learned[0.1]).all(), learned
    untouched = torch.ones(NUM_SAMPLES, dtype=torch.bool)
    untouched[index] = False
    assert (module.tau[untouched] == 0.3).all()


# --------------------------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("index", "match"),
    [
        (None, "index"),
        (torch.tensor([0, 1, 2, 3, 10]), "out of range"),
        (torch.tensor([0, 1, -1, 3, 4]), "out of range"),
        (torch.tensor([0, 1, 1, 3, 4]), "duplicates"),
        (torch.tensor([0, 1, 2, 3]), "shape"),
        (torch.tensor([0, 1, 2, 3, 4, 5]), "shape"),
        (torch.tensor([[0, 1, 2, 3, 4]]), "shape"),
        (torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0]), "integer"),
        ([0.0, 1.0, 2.0, 3.0, 4.0], "integer"),
        (torch.tensor([True, False, True, False, True]), "integer"),
    ],
    ids=[
        "missing",
        "too-large",
        "negative",
        "duplicate",
        "too-short",
        "too-long",
        "2-d",
        "float",
        "float-list",
        "bool",
    ],
)
def test_isogclr_rejects_bad_index(index: Any, match: str) -> None:
    module = _module(CONFIGS["default"]).train()
    before = _buffers(module)
    views = raw_views(5, 2, 4, seed=1)
    with pytest.raises(ValueError, match=match):
        module(views, index=index)
    for name, buffer in module.named_buffers():
        assert torch.equal(buffer, before[name]), name


def test_isogclr_accepts_a_list_index() -> None:
    module = _double(_module(CONFIGS["default"]))
    views, index = _batch(0, 2)
    expected = module(views, index=index)
    fresh = _double(_module(CONFIGS["default"]))
    assert torch.equal(fresh(views, index=index.tolist()), expected)


@pytest.mark.parametrize("num_samples", [0, -3, 2.5, "10", None])
def test_isogclr_rejects_bad_num_samples(num_samples: Any) -> None:
    with pytest.raises(ValueError, match="num_samples"):
        manyview.create("loss", "isogclr", num_samples=num_samples)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"gamma": 0.0},
        {"gamma": 1.5},
        {"beta": 0.0},
        {"tau_init": 0.01},
        {"tau_init": 0.9},
        {"tau_init": -0.1},
    ],
)
def test_isogclr_rejects_bad_hyperparameters(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        manyview.create("loss", "isogclr", num_samples=NUM_SAMPLES, **kwargs)
