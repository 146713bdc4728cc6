"""The samplers: with oracle networks of a single image x* they return x* for any number of
steps; with a tiny diffusers UNet they return finite images in [-1, 1], the same for the same
generator; they call the network K (DDIM, flow) or 2K − 1 (EDM Heun) times on the expected
grid; bad arguments are one-line errors."""

from __future__ import annotations

import math

import pytest
import torch

import manyview_diffusion
from manyview_diffusion import (
    SAMPLERS,
    DDPMLoss,
    EDMLoss,
    FlowMatchingLoss,
    ddim_sample,
    edm_sample,
    flow_sample,
    network_call,
    sample,
)
from manyview_diffusion.networks import build_network

SHAPE = (2, 3, 4, 4)
X_STAR = torch.linspace(-0.9, 0.9, math.prod(SHAPE[1:])).view(1, *SHAPE[1:])
"""The single image the oracles' data is (broadcast to the batch)."""


class Counting:
    """Wraps a network ``(x, t) -> out``; records each call's second argument."""

    def __init__(self, network) -> None:
        self.network, self.seen = network, []

    def __call__(self, x, t):
        assert x.shape == SHAPE or x.shape[0] == t.shape[0]
        self.seen.append(t.detach().clone())
        return self.network(x, t)


def eps_oracle(scheduler):
    """ε = (x_t − √ᾱ_t x*)/√(1 − ᾱ_t): the exact ε-prediction for data x*."""
    abar = scheduler.alphas_cumprod.double()

    def network(x_t, t):
        a = abar[t].view(-1, 1, 1, 1)
        return ((x_t.double() - a.sqrt() * X_STAR.double()) / (1 - a).sqrt()).to(x_t.dtype)

    return network


def d_oracle(x, sigma):
    """D(x; σ) = x*."""
    return X_STAR.expand_as(x).to(x.dtype)


def velocity_oracle(timestep_scale=1000.0):
    """v = (x_t − x*)/t: the exact velocity ε − x0 for data x*."""

    def network(x_t, scaled_t):
        t = (scaled_t.double() / timestep_scale).view(-1, 1, 1, 1)
        return ((x_t.double() - X_STAR.double()) / t).to(x_t.dtype)

    return network


@pytest.mark.parametrize("steps", [1, 2, 10])
@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_returns_the_oracles_image(steps, eta):
    scheduler = DDPMLoss().scheduler
    net = Counting(eps_oracle(scheduler))
    g = torch.Generator().manual_seed(steps)
    out = ddim_sample(net, SHAPE, scheduler=scheduler, steps=steps, generator=g, eta=eta)
    assert out.shape == SHAPE and out.dtype == torch.float32
    torch.testing.assert_close(out, X_STAR.expand(SHAPE), atol=1e-3, rtol=0)
    assert len(net.seen) == steps
    first = [int(t[0]) for t in net.seen]
    assert first[0] == 999 and first == sorted(first, reverse=True)  # trailing: from T − 1
    assert all(t.dtype == torch.long and t.shape == (2,) for t in net.seen)


def test_ddim_timesteps_are_diffusers():
    scheduler = DDPMLoss().scheduler
    for spacing, expected in (("trailing", [999, 499]), ("leading", [500, 0])):
        net = Counting(eps_oracle(scheduler))
        ddim_sample(net, SHAPE, scheduler=scheduler, steps=2, timestep_spacing=spacing)
        assert [int(t[0]) for t in net.seen] == expected


@pytest.mark.parametrize("steps", [1, 2, 10])
def test_edm_heun_returns_the_oracles_image(steps):
    net = Counting(d_oracle)
    out = edm_sample(net, SHAPE, steps=steps, generator=torch.Generator().manual_seed(0))
    assert out.shape == SHAPE
    torch.testing.assert_close(out, X_STAR.expand(SHAPE), atol=1e-5, rtol=0)
    assert len(net.seen) == 2 * steps - 1


def test_edm_heun_visits_edms_grid():
    """σ_i = (σ_max^(1/ρ) + i/(N−1)(σ_min^(1/ρ) − σ_max^(1/ρ)))^ρ, as NVlabs/edm generate.py;
    each step's Heun correction evaluates at σ_{i+1}; the last step (to 0) does not."""
    steps, lo, hi, rho = 4, 0.002, 80.0, 7.0
    grid = [(hi ** (1 / rho) + i / (steps - 1) * (lo ** (1 / rho) - hi ** (1 / rho))) ** rho
            for i in range(steps)]  # fmt: skip
    net = Counting(d_oracle)
    edm_sample(net, SHAPE, steps=steps)
    expected = [grid[0], grid[1], grid[1], grid[2], grid[2], grid[3], grid[3]]
    assert [float(s[0]) for s in net.seen] == pytest.approx(expected, rel=1e-6)
    assert all(s.shape == (2,) and s.dtype == torch.float32 for s in net.seen)
    one = Counting(d_oracle)
    edm_sample(one, SHAPE, steps=1, sigma_max=10.0)
    assert [float(s[0]) for s in one.seen] == [10.0]


@pytest.mark.parametrize("steps", [1, 2, 10])
def test_flow_euler_returns_the_oracles_image(steps):
    net = Counting(velocity_oracle())
    out = flow_sample(net, SHAPE, steps=steps, generator=torch.Generator().manual_seed(1))
    assert out.shape == SHAPE
    torch.testing.assert_close(out, X_STAR.expand(SHAPE), atol=1e-5, rtol=0)
    assert len(net.seen) == steps
    expected = [1000.0 * (1 - i / steps) for i in range(steps)]
    assert [float(t[0]) for t in net.seen] == pytest.approx(expected)


@pytest.mark.parametrize("steps", [1, 2, 10])
def test_sample_dispatches_on_the_objective(steps):
    ddpm = DDPMLoss()
    out = sample(ddpm, eps_oracle(ddpm.scheduler), SHAPE, steps=steps)
    torch.testing.assert_close(out, X_STAR.expand(SHAPE), atol=1e-3, rtol=0)

    edm = EDMLoss()

    def f_oracle(c_in_x, c_noise):
        """The raw network F whose preconditioned D(x; σ) = c_skip x + c_out F is x*."""
        sigma = (4 * c_noise.double()).exp().view(-1, 1, 1, 1)
        total = sigma**2 + edm.sigma_data**2
        x = c_in_x.double() * total.sqrt()
        c_skip, c_out = edm.sigma_data**2 / total, sigma * edm.sigma_data / total.sqrt()
        return ((X_STAR.double() - c_skip * x) / c_out).float()

    counted = Counting(f_oracle)
    out = sample(edm, counted, SHAPE, steps=steps)
    torch.testing.assert_close(out, X_STAR.expand(SHAPE), atol=1e-4, rtol=0)
    assert len(counted.seen) == 2 * steps - 1

    flow = FlowMatchingLoss(timestep_scale=1.0)
    out = sample(flow, velocity_oracle(1.0), SHAPE, steps=steps)
    torch.testing.assert_close(out, X_STAR.expand(SHAPE), atol=1e-5, rtol=0)


@pytest.fixture(scope="module")
def unet():
    torch.manual_seed(0)
    return build_network("UNet2DModel", who="test", classes=("UNet2DModel",)).eval()


UNET_SHAPE = (2, 3, 16, 16)


def _unet_samples(unet, objective, seed, steps=3, **kw):
    return sample(
        objective,
        network_call(unet),
        UNET_SHAPE,
        steps=steps,
        generator=torch.Generator().manual_seed(seed),
        **kw,
    )


@pytest.mark.parametrize(
    ("objective", "kw"),
    [(DDPMLoss(), {}), (DDPMLoss(), {"eta": 1.0}), (EDMLoss(), {}), (FlowMatchingLoss(), {})],
)
def test_a_tiny_unet_gives_finite_images_deterministic_in_the_generator(unet, objective, kw):
    a = _unet_samples(unet, objective, seed=0, **kw)
    assert a.shape == UNET_SHAPE and a.dtype == torch.float32 and not a.requires_grad
    assert torch.isfinite(a).all() and a.min() >= -1 and a.max() <= 1
    assert torch.equal(a, _unet_samples(unet, objective, seed=0, **kw))
    assert not torch.equal(a, _unet_samples(unet, objective, seed=1, **kw))


def test_ddim_eta_draws_more_noise_from_the_generator(unet):
    a = _unet_samples(unet, DDPMLoss(), seed=0)
    b = _unet_samples(unet, DDPMLoss(), seed=0, eta=1.0)
    assert not torch.equal(a, b)


def test_the_tiny_unet_is_called_k_or_2k_minus_1_times(unet):
    calls = []
    unet_call = network_call(unet)

    def counted(x, t):
        calls.append(t)
        return unet_call(x, t)

    for objective, expected in ((DDPMLoss(), 4), (EDMLoss(), 7), (FlowMatchingLoss(), 4)):
        calls.clear()
        sample(objective, counted, UNET_SHAPE, steps=4)
        assert len(calls) == expected, type(objective).__name__


def _one_line(excinfo) -> str:
    text = str(excinfo.value)
    assert "\n" not in text
    return text


def _samplers():
    scheduler = DDPMLoss().scheduler
    return {
        "ddim_sample": lambda **kw: ddim_sample(eps_oracle(scheduler), scheduler=scheduler, **kw),
        "edm_sample": lambda **kw: edm_sample(d_oracle, **kw),
        "flow_sample": lambda **kw: flow_sample(velocity_oracle(), **kw),
    }


@pytest.mark.parametrize("who", ["ddim_sample", "edm_sample", "flow_sample"])
@pytest.mark.parametrize("steps", [0, -2, 1.5, True, "3", None])
def test_bad_steps_are_one_line(who, steps):
    with pytest.raises(ValueError) as excinfo:
        _samplers()[who](shape=SHAPE, steps=steps)
    assert _one_line(excinfo) == f"{who}: steps must be a positive int, got {steps!r}"


@pytest.mark.parametrize("who", ["ddim_sample", "edm_sample", "flow_sample"])
@pytest.mark.parametrize("shape", [(3,), (2, 0, 4, 4), (2, 3.0, 4, 4), "2x3", 5, (2, True)])
def test_bad_shapes_are_one_line(who, shape):
    with pytest.raises(ValueError) as excinfo:
        _samplers()[who](shape=shape, steps=2)
    assert _one_line(excinfo).startswith(f"{who}: shape must be a tuple of at least two positive")


def test_more_ddim_steps_than_timesteps_is_one_line():
    scheduler = DDPMLoss(num_train_timesteps=50).scheduler
    with pytest.raises(ValueError) as excinfo:
        ddim_sample(eps_oracle(scheduler), SHAPE, scheduler=scheduler, steps=51)
    assert _one_line(excinfo) == (
        "ddim_sample: steps must be at most the scheduler's num_train_timesteps (50), got 51"
    )
    torch.testing.assert_close(  # every timestep once is fine
        ddim_sample(eps_oracle(scheduler), SHAPE, scheduler=scheduler, steps=50),
        X_STAR.expand(SHAPE),
        atol=1e-3,
        rtol=0,
    )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: ddim_sample(d_oracle, SHAPE, scheduler=object(), steps=2),
            "ddim_sample: scheduler must be the diffusers DDPMScheduler",
        ),
        (
            lambda: ddim_sample(d_oracle, SHAPE, scheduler=DDPMLoss().scheduler, steps=2, eta=-1),
            "ddim_sample: eta must be a finite number >= 0, got -1",
        ),
        (
            lambda: edm_sample(d_oracle, SHAPE, steps=2, sigma_min=1.0, sigma_max=0.5),
            "edm_sample: sigma_min (1.0) must be below sigma_max (0.5)",
        ),
        (
            lambda: flow_sample(velocity_oracle(), SHAPE, steps=2, generator=3),
            "flow_sample: generator must be a torch.Generator or None, got int",
        ),
        (
            lambda: flow_sample(lambda x, t: x[:, :1], SHAPE, steps=2),
            "the network predicts (2, 1, 4, 4) for inputs (2, 3, 4, 4)",
        ),
        (
            lambda: sample(torch.nn.MSELoss(), d_oracle, SHAPE, steps=2),
            "sample: objective must be a DDPMLoss, EDMLoss or FlowMatchingLoss module",
        ),
        (
            lambda: sample(DDPMLoss(), d_oracle, SHAPE, steps=2, sampler="ddpm"),
            "sample: unknown sampler 'ddpm'; did you mean 'ddim'? (choose from 'ddim')",
        ),
        (
            lambda: sample(EDMLoss(), d_oracle, SHAPE, steps=2, sigma_maxx=10.0),
            "sample: 'sigma_maxx' is not an option of the EDMLoss sampler 'heun'; did you "
            "mean 'sigma_max' or 'sigma_min'? (its options: sigma_min, sigma_max, rho, device, dtype)",
        ),
        (
            lambda: sample(FlowMatchingLoss(), d_oracle, SHAPE, steps=2, timestep_scale=1.0),
            "sample: 'timestep_scale' is taken from the FlowMatchingLoss objective and cannot be "
            "given here (its sampler 'euler' takes: device, dtype)",
        ),
    ],
)
def test_bad_arguments_are_one_line(call, message):
    with pytest.raises(ValueError) as excinfo:
        call()
    assert _one_line(excinfo).startswith(message)


def test_the_samplers_are_exported_lazily():
    assert SAMPLERS == {"DDPMLoss": ("ddim",), "EDMLoss": ("heun",), "FlowMatchingLoss": ("euler",)}
    assert "SAMPLERS" in manyview_diffusion.__all__
    for name in ("ddim_sample", "edm_sample", "flow_sample", "sample"):
        assert name in manyview_diffusion.__all__
        assert getattr(manyview_diffusion, name).__module__ == "manyview_diffusion.sampling"
