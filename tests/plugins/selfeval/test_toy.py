"""The 2-D toy: its data, its denoiser's contract, its sampler and metric, and the paper's
claim at toy scale: with 2 sampling steps Self-E lands much nearer its class's modes than
flow matching trained the same way, and at 16 steps the two agree."""

from __future__ import annotations

import pytest
import torch

from manyview_selfeval.toy import (
    TOY_SIGMA,
    ToyDenoiser,
    mode_distance,
    toy_data,
    toy_ddim_sde_sample,
    toy_modes,
    train_toy,
)


@pytest.fixture
def one_thread():
    """A 128-wide MLP on 256 rows runs fastest on one thread (and steadily on a busy host)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_toy_data_is_two_modes_per_class():
    x, labels = toy_data(4000, torch.Generator().manual_seed(0))
    assert x.shape == (4000, 2) and labels.shape == (4000,)
    assert set(labels.tolist()) == {0, 1, 2, 3}
    modes = toy_modes()
    assert modes.shape == (4, 2, 2) and torch.equal(modes[:, 0, 0], torch.full((4,), -2.0))
    assert mode_distance(x, labels) == pytest.approx(TOY_SIGMA * (torch.pi / 2) ** 0.5, rel=0.05)
    # each class fills both of its modes
    for c in range(4):
        assert 0.4 < (x[labels == c, 0] > 0).float().mean().item() < 0.6
    assert torch.equal(toy_data(10, torch.Generator().manual_seed(1))[0],
                       toy_data(10, torch.Generator().manual_seed(1))[0])  # fmt: skip


def test_toy_denoiser_contract_and_the_gap_input():
    model = ToyDenoiser()
    x, t = torch.randn(5, 2), torch.rand(5)
    cond = torch.zeros(5, 4)
    out = model(x, t, t * 0.5, cond)
    assert out.shape == (5, 2)
    assert torch.equal(out, model(x, t, t, cond))  # the gap branch starts at zero
    torch.nn.init.normal_(model.time_s[-1].weight)
    assert not torch.allclose(model(x, t, t * 0.5, cond), model(x, t, t, cond))


def test_toy_sampler_steps_and_landing_times():
    calls = []

    class Recorder(ToyDenoiser):
        def forward(self, x, t, s, cond):
            calls.append((t[0].item(), s[0].item()))
            return torch.zeros_like(x)  # V = 0: x0 = x

    labels = torch.arange(4)
    out = toy_ddim_sde_sample(Recorder(), labels, 4, generator=torch.Generator().manual_seed(0))
    assert out.shape == (4, 2)
    assert sum(calls, ()) == pytest.approx((1.0, 0.75, 0.75, 0.5, 0.5, 0.25, 0.25, 0.0))
    calls.clear()
    toy_ddim_sde_sample(Recorder(), labels, 2, mode="flow_matching")
    assert sum(calls, ()) == pytest.approx((1.0, 1.0, 0.5, 0.5))

    # one step is x0 = x − V at t = 1: with the exact velocity of a point mass, that point
    class Exact(ToyDenoiser):
        def forward(self, x, t, s, cond):
            return x - torch.tensor([2.0, 1.0])

    one = toy_ddim_sde_sample(Exact(), labels, 1, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(one, torch.tensor([2.0, 1.0]).expand(4, 2))


def test_train_toy_is_reproducible_and_learns(one_thread):
    a = train_toy("self_e", steps=40, batch=32, seed=3)
    b = train_toy("self_e", steps=40, batch=32, seed=3)
    assert a.losses == b.losses and len(a.losses) == 40
    assert sum(a.losses[-5:]) < sum(a.losses[:5])
    assert not a.ema.training and all(not p.requires_grad for p in a.ema.parameters())
    with pytest.raises(ValueError, match="did you mean 'flow_matching'"):
        train_toy("flow_match")


@pytest.mark.slow
def test_self_e_beats_flow_matching_at_two_steps_and_matches_it_at_sixteen(one_thread):
    labels = torch.arange(4).repeat_interleave(1000)
    dist = {}
    for mode in ("flow_matching", "self_e"):
        run = train_toy(mode, steps=3000, batch=256, seed=0)
        for steps in (2, 16):
            g = torch.Generator().manual_seed(123)
            samples = toy_ddim_sde_sample(run.ema, labels, steps, mode=mode, generator=g)
            dist[mode, steps] = mode_distance(samples, labels)
    assert dist["self_e", 2] < 0.6 * dist["flow_matching", 2], dist
    assert abs(dist["self_e", 16] - dist["flow_matching", 16]) <= 0.02, dist
