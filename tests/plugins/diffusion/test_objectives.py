"""DDPM, EDM and flow-matching losses against naive float64 formulas written here, their
draws from the generator, gradients into a diffusers network, and bad options."""

from __future__ import annotations

import math

import pytest
import torch

from manyview_diffusion import DDAEUNet, DDPMLoss, EDMLoss, FlowMatchingLoss, network_call


class Toy(torch.nn.Module):
    """A deterministic time-dependent network: conv(x) · (1 + 0.001·t) + 0.01·t."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, x, t):
        t = t.to(x.dtype).view(-1, 1, 1, 1)
        return self.conv(x) * (1 + 0.001 * t) + 0.01 * t


def _draws(n=3, shape=(3, 2, 4, 4)):
    g = torch.Generator().manual_seed(0)
    return torch.randn(shape, generator=g), torch.randn(shape, generator=g), g


def test_ddpm_against_the_float64_formula():
    net, loss = Toy(), DDPMLoss()
    x0, eps, _ = _draws()
    t = torch.tensor([0, 500, 999])
    got = loss.loss_at(net, x0, t, eps)
    betas = [1e-4 + (0.02 - 1e-4) * i / 999 for i in range(1000)]
    net64, total = Toy().double(), 0.0
    for i in range(3):
        abar = math.prod(1 - b for b in betas[: t[i] + 1])
        x_t = math.sqrt(abar) * x0[i].double() + math.sqrt(1 - abar) * eps[i].double()
        pred = net64(x_t[None], t[i : i + 1])[0]
        total += ((eps[i].double() - pred) ** 2).sum().item()
    assert got.dim() == 0
    assert got.item() == pytest.approx(total / x0.numel(), rel=1e-5)


def test_edm_against_the_float64_formula():
    net, loss = Toy(), EDMLoss()
    x0, noise, _ = _draws()
    sigma = torch.tensor([0.002, 0.3, 80.0])
    got = loss.loss_at(net, x0, sigma, noise)
    net64, sd, total = Toy().double(), 0.5, 0.0
    for i in range(3):
        s = float(sigma[i])
        c_skip, c_out = sd**2 / (s**2 + sd**2), s * sd / math.sqrt(s**2 + sd**2)
        c_in, c_noise = 1 / math.sqrt(s**2 + sd**2), math.log(s) / 4
        x = x0[i].double() + s * noise[i].double()
        f = net64(c_in * x[None], torch.tensor([c_noise], dtype=torch.float64))[0]
        d = c_skip * x + c_out * f
        lam = (s**2 + sd**2) / (s * sd) ** 2
        total += lam * ((d - x0[i].double()) ** 2).sum().item()
    assert got.item() == pytest.approx(total / x0.numel(), rel=1e-5)


def test_flow_matching_against_the_float64_formula():
    net, loss = Toy(), FlowMatchingLoss()
    x0, eps, _ = _draws()
    t = torch.tensor([0.0, 0.25, 1.0])
    got = loss.loss_at(net, x0, t, eps)
    net64, total = Toy().double(), 0.0
    for i in range(3):
        ti = float(t[i])
        x_t = (1 - ti) * x0[i].double() + ti * eps[i].double()
        v = net64(x_t[None], torch.tensor([1000 * ti], dtype=torch.float64))[0]
        total += ((v - (eps[i].double() - x0[i].double())) ** 2).sum().item()
    assert got.item() == pytest.approx(total / x0.numel(), rel=1e-5)


def test_forward_draws_from_the_generator():
    net, x0 = Toy(), torch.randn(3, 2, 4, 4)
    g = torch.Generator().manual_seed(7)
    t = torch.randint(0, 1000, (3,), generator=g)
    eps = torch.randn(x0.shape, generator=g)
    ddpm = DDPMLoss()
    assert torch.equal(
        ddpm(net, x0, generator=torch.Generator().manual_seed(7)), ddpm.loss_at(net, x0, t, eps)
    )

    g = torch.Generator().manual_seed(7)
    sigma = (torch.randn(3, generator=g) * 1.2 - 1.2).exp()
    noise = torch.randn(x0.shape, generator=g)
    edm = EDMLoss()
    assert torch.equal(
        edm(net, x0, generator=torch.Generator().manual_seed(7)), edm.loss_at(net, x0, sigma, noise)
    )

    g = torch.Generator().manual_seed(7)
    tl = torch.randn(3, generator=g).sigmoid()
    eps = torch.randn(x0.shape, generator=g)
    fm = FlowMatchingLoss(t_sampling="logit_normal")
    assert torch.equal(
        fm(net, x0, generator=torch.Generator().manual_seed(7)), fm.loss_at(net, x0, tl, eps)
    )


@pytest.mark.parametrize("make", [DDPMLoss, EDMLoss, FlowMatchingLoss])
def test_gradients_reach_a_diffusers_network(make):
    unet = DDAEUNet().network
    x0 = torch.rand(2, 3, 16, 16) * 2 - 1
    loss = make()(network_call(unet), x0, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(loss) and loss.dim() == 0
    loss.backward()
    assert unet.conv_in.weight.grad is not None and unet.conv_in.weight.grad.abs().sum() > 0


def test_a_learned_variance_output_is_read_at_its_first_channels():
    x0, eps, _ = _draws()
    t = torch.tensor([1, 2, 3])
    full = DDPMLoss().loss_at(lambda x, t: torch.cat([x, 5 * x], 1), x0, t, eps)
    half = DDPMLoss().loss_at(lambda x, t: x, x0, t, eps)
    assert torch.equal(full, half)
    with pytest.raises(ValueError, match=r"out_channels must equal in_channels"):
        DDPMLoss().loss_at(lambda x, t: x[:, :1], x0, t, eps)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (
            lambda: DDPMLoss(num_train_timesteps=0),
            "ddpm: num_train_timesteps must be a positive int",
        ),
        (lambda: DDPMLoss(beta_schedule="cosine"), "ddpm: beta_schedule 'cosine' is not one of"),
        (lambda: EDMLoss(sigma_data=0), "edm: sigma_data must be"),
        (lambda: EDMLoss(p_mean=float("nan")), "edm: p_mean must be a finite number"),
        (lambda: FlowMatchingLoss(t_sampling="beta"), "flow_matching: unknown t_sampling 'beta'"),
    ],
)
def test_bad_options(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"ddpm: expects clean float inputs \(N, \.\.\.\)"):
        DDPMLoss()(Toy(), torch.zeros(2, 2, 4, 4, dtype=torch.long))


def test_inputs_at_one_noise_level_match_the_training_noise():
    x0, noise, _ = _draws()
    ddpm, edm, flow = DDPMLoss(), EDMLoss(), FlowMatchingLoss()
    x, t = ddpm.inputs_at(x0, 11, noise)
    assert torch.equal(t, torch.full((3,), 11))
    torch.testing.assert_close(x, ddpm.scheduler.add_noise(x0, noise, t))
    x, c = edm.inputs_at(x0, 0.06, noise)
    scale = 1 / math.sqrt(0.06**2 + 0.25)
    torch.testing.assert_close(x, scale * (x0 + 0.06 * noise))
    torch.testing.assert_close(c, torch.full((3,), math.log(0.06) / 4))
    x, t = flow.inputs_at(x0, 0.25, noise)
    torch.testing.assert_close(x, 0.75 * x0 + 0.25 * noise)
    torch.testing.assert_close(t, torch.full((3,), 250.0))


@pytest.mark.parametrize(
    ("loss", "level", "match"),
    [
        (DDPMLoss(), 1000, r"outside the schedule's timesteps \[0, 999\]"),
        (DDPMLoss(), 0.5, "timestep"),
        (EDMLoss(), 0.0, "sigma"),
        (FlowMatchingLoss(), 1.5, r"\[0, 1\]"),
    ],
)
def test_a_noise_level_outside_the_schedule_is_one_line(loss, level, match):
    x0, noise, _ = _draws()
    with pytest.raises(ValueError, match=match) as info:
        loss.inputs_at(x0, level, noise)
    assert "\n" not in str(info.value)
