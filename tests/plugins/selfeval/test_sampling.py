"""The any-step samplers: EP-CFG keeps each sample's energy and is the identity at ω = 1;
with the exact velocity of a single data point x* Euler and DDIM-SDE land on x* for any K;
s_policy "same" with Euler is plain flow-matching Euler; K = 1..50 all run on an MLP, the
same for the same seed; the model is called K or 2K times on the expected (t, s) grid; bad
arguments are one-line errors."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch

import manyview_selfeval
from manyview_selfeval import (
    MLPDenoiser,
    energy_preserving_cfg,
    landing_times,
    sample,
    time_grid,
)

SHAPE = (3, 1, 2, 2)
X_STAR = torch.linspace(-0.9, 0.9, math.prod(SHAPE[1:]), dtype=torch.float64).view(1, *SHAPE[1:])
COND = torch.zeros(SHAPE[0], 4)


class Counting:
    """Wraps a model ``(x_t, t, s, cond) -> V``; records each call's (t, s, cond)."""

    def __init__(self, model) -> None:
        self.model, self.seen = model, []

    def __call__(self, x_t, t, s, cond):
        assert t.shape == s.shape == (x_t.shape[0],)
        assert t.dtype == s.dtype == torch.promote_types(x_t.dtype, torch.float32)
        self.seen.append((t.clone(), s.clone(), cond))
        return self.model(x_t, t, s, cond)


def oracle(x_t, t, s, cond):
    """V = (x_t − x*)/t: the exact velocity ε − x0 when the data is the single point x*."""
    tt = t.double().view(-1, *([1] * (x_t.dim() - 1)))
    return ((x_t.double() - X_STAR) / tt).to(x_t.dtype)


def _seed(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _one_line(excinfo, *needles):
    text = str(excinfo.value)
    assert "\n" not in text, text
    for needle in needles:
        assert needle in text, text


# -- EP-CFG ----------------------------------------------------------------------------------


def test_ep_cfg_keeps_each_samples_energy():
    g = torch.Generator().manual_seed(0)
    pos, neg = torch.randn(5, 3, 4, 4, generator=g), torch.randn(5, 3, 4, 4, generator=g)
    pos[1] *= 10.0
    for scale in (1.5, 5.0, 12.0):
        out = energy_preserving_cfg(pos, neg, scale)
        torch.testing.assert_close(
            out.flatten(1).norm(dim=1), pos.flatten(1).norm(dim=1), rtol=1e-5, atol=0
        )
        # the direction is that of plain CFG, pos + (ω − 1)(pos − neg)
        cfg = pos + (scale - 1) * (pos - neg)
        cos = torch.nn.functional.cosine_similarity(out.flatten(1), cfg.flatten(1))
        torch.testing.assert_close(cos, torch.ones(5), rtol=0, atol=1e-6)


def test_ep_cfg_at_scale_one_is_pos_and_zero_energy_is_finite():
    pos, neg = torch.randn(4, 6), torch.randn(4, 6)
    assert torch.equal(energy_preserving_cfg(pos, neg, 1.0), pos)
    zero = torch.zeros(2, 3)
    out = energy_preserving_cfg(zero, zero, 5.0)
    assert torch.equal(out, zero)
    out = energy_preserving_cfg(zero, torch.ones(2, 3), 5.0)  # pos has no energy to keep
    assert torch.isfinite(out).all() and torch.equal(out, zero)
    half = energy_preserving_cfg(pos.half(), neg.half(), 3.0)
    assert half.dtype == torch.float16


def test_ep_cfg_matches_minfm_on_a_batch():
    """minFM's energy_preserve_cfg on one sequence per sample (datum_lens = tokens)."""
    pos, neg = torch.randn(2, 5, 3, dtype=torch.float64), torch.randn(2, 5, 3, dtype=torch.float64)
    scale = 4.0
    cfg = pos + (scale - 1) * (pos - neg)
    ratio = (pos.square().sum(dim=(1, 2)) / cfg.square().sum(dim=(1, 2))).sqrt()
    torch.testing.assert_close(energy_preserving_cfg(pos, neg, scale), cfg * ratio[:, None, None])


@pytest.mark.parametrize(
    ("call", "needles"),
    [
        (lambda: energy_preserving_cfg(torch.ones(2, 3), torch.ones(2, 3), 0.5), [">= 1"]),
        (lambda: energy_preserving_cfg(torch.ones(2, 3), torch.ones(2, 4), 2.0), ["one shape"]),
        (lambda: energy_preserving_cfg(torch.ones(3), torch.ones(3), 2.0), ["(N, ...)"]),
        (lambda: energy_preserving_cfg(torch.ones(2, 3), torch.ones(2, 3), float("nan")), []),
    ],
)
def test_ep_cfg_errors_are_one_line(call, needles):
    with pytest.raises(ValueError) as e:
        call()
    _one_line(e, "energy_preserving_cfg", *needles)


# -- time grids --------------------------------------------------------------------------------


def test_time_grid_and_landing_times():
    grid = time_grid(4)
    assert grid.dtype == torch.float64
    assert grid.tolist() == [1.0, 0.75, 0.5, 0.25, 0.0]
    assert time_grid(1).tolist() == [1.0, 0.0]
    assert landing_times(grid, "next").tolist() == [0.75, 0.5, 0.25, 0.0]
    assert landing_times(grid, "same").tolist() == [1.0, 0.75, 0.5, 0.25]
    assert landing_times(grid, "mid").tolist() == [0.875, 0.625, 0.375, 0.125]


def test_shifted_grid_is_the_resolution_shift():
    mu = 1.15
    grid = time_grid(8, shift=mu)
    t = time_grid(8)
    expected = [1.0] + [math.exp(mu) / (math.exp(mu) + 1 / v - 1) for v in t[1:-1].tolist()]
    assert grid.tolist()[:-1] == pytest.approx(expected, rel=1e-12)
    assert grid[0] == 1.0 and grid[-1] == 0.0
    assert (grid[1:-1] > t[1:-1]).all()  # mu > 0: more of the steps near the noise
    assert (time_grid(8, shift=-1.0)[1:-1] < t[1:-1]).all()


# -- the oracle: every sampler lands on x* ----------------------------------------------------


@pytest.mark.parametrize("steps", [1, 2, 10])
@pytest.mark.parametrize(
    ("sampler", "eta"), [("euler", 1.0), ("ddim_sde", 0.0), ("ddim_sde", 1.0), ("ddim_sde", 0.5)]
)
@pytest.mark.parametrize("s_policy", ["next", "same", "mid"])
def test_the_oracle_lands_on_its_point(steps, sampler, eta, s_policy):
    model = Counting(oracle)
    g = torch.Generator().manual_seed(steps)
    out = sample(
        model,
        SHAPE,
        COND,
        steps=steps,
        sampler=sampler,
        eta=eta,
        s_policy=s_policy,
        guidance="none",
        generator=g,
        dtype=torch.float64,
    )
    assert out.shape == SHAPE and out.dtype == torch.float64
    torch.testing.assert_close(out, X_STAR.expand(SHAPE), atol=1e-9, rtol=0)
    assert len(model.seen) == steps
    grid = time_grid(steps)
    lands = landing_times(grid, s_policy)
    for k, (t, s, _) in enumerate(model.seen):
        assert t.tolist() == pytest.approx([float(grid[k])] * SHAPE[0])
        assert s.tolist() == pytest.approx([float(lands[k])] * SHAPE[0])


@pytest.mark.parametrize("guidance", ["cfg", "ep_cfg"])
def test_the_oracle_lands_on_its_point_with_guidance(guidance):
    """Both branches are the same oracle: guidance changes nothing (EP-CFG's rescale is 1)."""
    model = Counting(oracle)
    out = sample(
        model, SHAPE, COND, COND + 1, steps=4, guidance=guidance, scale=5.0, dtype=torch.float64
    )
    torch.testing.assert_close(out, X_STAR.expand(SHAPE), atol=1e-9, rtol=0)
    assert len(model.seen) == 8
    conds = [c for _, _, c in model.seen]
    assert all(torch.equal(c, COND) for c in conds[0::2])  # the conditional pass first
    assert all(torch.equal(c, COND + 1) for c in conds[1::2])


def test_same_with_euler_is_plain_flow_matching():
    """s_policy="same": V(x, t_k, t_k); Euler is x ← x + (t_{k+1} − t_k) v on t_k = 1 − k/K."""
    torch.manual_seed(0)
    model = MLPDenoiser(4, 3, hidden=16, time_dim=8)
    shape, cond = (5, 4), torch.randn(5, 3)
    steps = 7
    out = sample(
        model,
        shape,
        cond,
        steps=steps,
        sampler="euler",
        s_policy="same",
        guidance="none",
        generator=torch.Generator().manual_seed(3),
    )
    x = torch.randn(shape, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        for k in range(steps):
            t, t_next = 1 - k / steps, 1 - (k + 1) / steps
            tt = torch.full((5,), t)
            x = x + (t_next - t) * model(x, tt, tt, cond)
    torch.testing.assert_close(out, x, rtol=0, atol=1e-6)


def test_ddim_sde_eta_zero_is_deterministic_ddim_and_eta_one_uses_the_generator():
    torch.manual_seed(0)
    model = MLPDenoiser(4, 3, hidden=16, time_dim=8)
    cond = torch.randn(5, 3)
    kw = dict(steps=5, guidance="none")
    g = torch.Generator().manual_seed(1)
    a = sample(model, (5, 4), cond, eta=0.0, generator=g, **kw)
    after_start = torch.Generator().manual_seed(1)
    torch.randn((5, 4), generator=after_start)  # at η = 0 only the start noise is drawn
    assert torch.equal(g.get_state(), after_start.get_state())
    # DDIM by hand: x ← α′ x0 + β′ ε
    x = torch.randn((5, 4), generator=torch.Generator().manual_seed(1))
    grid = time_grid(5).tolist()
    with torch.no_grad():
        for k in range(5):
            t, tn = grid[k], grid[k + 1]
            v = model(x, torch.full((5,), t), torch.full((5,), tn), cond)
            x0, eps = x - t * v, x + (1 - t) * v
            x = (1 - tn) * x0 + tn * eps
    torch.testing.assert_close(a, x, rtol=0, atol=1e-6)
    b1 = sample(model, (5, 4), cond, eta=1.0, generator=torch.Generator().manual_seed(1), **kw)
    b2 = sample(model, (5, 4), cond, eta=1.0, generator=torch.Generator().manual_seed(1), **kw)
    b3 = sample(model, (5, 4), cond, eta=1.0, generator=torch.Generator().manual_seed(2), **kw)
    assert torch.equal(b1, b2) and not torch.equal(b1, b3) and not torch.equal(a, b1)


def test_one_ddim_sde_step_is_the_x0_estimate():
    torch.manual_seed(0)
    model = MLPDenoiser(4, 3, hidden=16, time_dim=8)
    cond = torch.randn(5, 3)
    for sampler in ("ddim_sde", "euler"):
        out = sample(
            model,
            (5, 4),
            cond,
            steps=1,
            sampler=sampler,
            guidance="none",
            generator=torch.Generator().manual_seed(0),
        )
        x = torch.randn((5, 4), generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            v = model(x, torch.ones(5), torch.zeros(5), cond)
        torch.testing.assert_close(out, model.x0_from(x, 1.0, v), rtol=0, atol=1e-6)


# -- an MLP at any K ------------------------------------------------------------------------------


def test_any_k_from_1_to_50_runs_and_repeats_with_the_seed():
    torch.manual_seed(0)
    model = Counting(MLPDenoiser(2, 4, hidden=16, time_dim=8))
    cond, null = torch.randn(6, 4), torch.zeros(1, 4)
    for steps in range(1, 51):
        calls = len(model.seen)
        out = sample(model, (6, 2), cond, null, steps=steps, generator=_seed(steps))
        assert out.shape == (6, 2) and torch.isfinite(out).all()
        assert len(model.seen) - calls == 2 * steps  # ep_cfg: two calls a step
        if steps in (1, 2, 7, 50):
            again = sample(model, (6, 2), cond, null, steps=steps, generator=_seed(steps))
            other = sample(model, (6, 2), cond, null, steps=steps, generator=_seed(steps + 100))
            assert torch.equal(out, again) and not torch.equal(out, other)


@pytest.mark.parametrize(("guidance", "per_step"), [("none", 1), ("cfg", 2), ("ep_cfg", 2)])
def test_model_calls_per_step(guidance, per_step):
    model = Counting(MLPDenoiser(2, 4, hidden=16, time_dim=8))
    sample(model, (3, 2), torch.randn(3, 4), torch.zeros(3, 4), steps=6, guidance=guidance)
    assert len(model.seen) == 6 * per_step


def test_cfg_scale_one_is_no_guidance_and_scale_matters():
    torch.manual_seed(0)
    model = MLPDenoiser(2, 4, hidden=16, time_dim=8)
    cond, null = torch.randn(3, 4), torch.zeros(3, 4)
    kw = dict(steps=3, sampler="euler")

    def run(**more):
        return sample(
            model, (3, 2), cond, null, generator=torch.Generator().manual_seed(0), **kw, **more
        )

    plain = run(guidance="none")
    assert torch.equal(run(guidance="cfg", scale=1.0), plain)
    assert torch.equal(run(guidance="ep_cfg", scale=1.0), plain)
    assert not torch.equal(run(guidance="cfg", scale=3.0), plain)
    assert not torch.equal(run(guidance="ep_cfg", scale=3.0), run(guidance="cfg", scale=3.0))


def test_clip_one_row_conditions_and_dtype():
    torch.manual_seed(0)
    model = MLPDenoiser(2, 4, hidden=16, time_dim=8)
    kw = dict(steps=2, guidance="none", generator=torch.Generator().manual_seed(0))
    out = sample(model, (5, 2), torch.randn(1, 4) * 50, clip=0.01, **kw)
    assert out.abs().max() <= 0.01
    one = sample(model, (5, 2), torch.ones(1, 4), steps=2, guidance="none")
    full = sample(model, (5, 2), torch.ones(5, 4), steps=2, guidance="none")
    assert one.shape == full.shape == (5, 2)
    half = sample(model, (5, 2), torch.ones(5, 4), steps=2, guidance="none", dtype=torch.float64)
    assert half.dtype == torch.float64


@pytest.mark.parametrize(
    ("kw", "needles"),
    [
        (dict(steps=0), ["steps must be", "got 0"]),
        (dict(steps=2.5), ["steps"]),
        (dict(steps=2, sampler="ddim"), ["unknown sampler", "did you mean 'ddim_sde'"]),
        (dict(steps=2, sampler="eular"), ["did you mean 'euler'"]),
        (dict(steps=2, s_policy="nxt"), ["unknown s_policy", "did you mean 'next'"]),
        (dict(steps=2, guidance="epcfg"), ["unknown guidance", "did you mean 'ep_cfg'"]),
        (dict(steps=2, scale=0.5), ["scale", ">= 1"]),
        (dict(steps=2, eta=-1.0), ["eta"]),
        (dict(steps=2, clip=0.0), ["clip"]),
        (dict(steps=2, shift=float("inf")), ["shift"]),
        (dict(steps=2, generator=3), ["generator"]),
        (dict(steps=2, dtype=torch.long), ["dtype"]),
        (dict(steps=2, shape=(3,)), ["shape must be"]),
        (dict(steps=2, shape=(3, 0)), ["shape must be"]),
        (dict(steps=2, cond=torch.zeros(2, 4)), ["cond has 2 rows for 3 samples"]),
        (dict(steps=2, cond=torch.zeros(3)), ["cond must be a tensor"]),
        (dict(steps=2, null_cond=None), ["needs null_cond"]),
        (dict(steps=2, null_cond=torch.zeros(4, 4)), ["null_cond has 4 rows"]),
        (dict(steps=2, model=lambda x, t, s, c: x[:, :1]), ["the model returned (3, 1)"]),
        (dict(steps=2, model="net"), ["callable"]),
    ],
)
def test_bad_arguments_are_one_line(kw, needles):
    args = {
        "model": MLPDenoiser(2, 4),
        "shape": (3, 2),
        "cond": torch.zeros(3, 4),
        "null_cond": torch.zeros(3, 4),
    }
    args.update(kw)
    model, shape, cond, null = (args.pop(k) for k in ("model", "shape", "cond", "null_cond"))
    with pytest.raises(ValueError) as e:
        sample(model, shape, cond, null, **args)
    _one_line(e, "sample", *needles)


def test_time_grid_errors_are_one_line():
    with pytest.raises(ValueError) as e:
        time_grid(0)
    _one_line(e, "time_grid", "steps")
    with pytest.raises(ValueError) as e:
        landing_times(time_grid(2), "later")
    _one_line(e, "landing_times", "s_policy")


def test_the_package_exports_them_lazily():
    for name in ("sample", "energy_preserving_cfg", "time_grid", "landing_times", "SAMPLERS"):
        assert name in manyview_selfeval.__all__
        assert getattr(manyview_selfeval, name) is not None
    assert manyview_selfeval.SAMPLERS[0] == "ddim_sde"


def _doc_blocks(*sections: str) -> list[str]:
    """The python blocks of these sections of docs/selfeval.md."""
    text = (Path(__file__).resolve().parents[3] / "docs" / "selfeval.md").read_text()
    blocks = []
    for part in text.split("\n## ")[1:]:
        title, _, body = part.partition("\n")
        if title.strip() in sections:
            blocks += re.findall(r"```python\n(.*?)```", body, flags=re.S)
    return blocks


def test_the_documented_examples_run():
    blocks = _doc_blocks("Dual-time denoisers", "Sampling")
    assert len(blocks) == 2
    for code in blocks:
        scope: dict = {}
        exec(compile(code, "docs/selfeval.md", "exec"), scope)
    assert scope["x0"].shape == (16, 2) and scope["fm"].shape == (16, 2)
