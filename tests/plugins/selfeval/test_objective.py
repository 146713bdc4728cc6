"""The Self-E objective against naive float64 formulas written here: λ, β, the renormalised
target, the time draws, the evaluator pass (modes, batch-norm statistics, parameters and
gradients left alone), the loss and its gradient, its identities (s = t is flow matching,
the self-evaluation gradient is 2Δ), the auxiliary fake-score term, and bad input."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from manyview_selfeval.objective import (
    SelfELoss,
    draw_times,
    evaluate,
    lambda_st,
    merge_beta,
    renormalized_target,
    self_evaluation,
    tau_at,
)

DIM, CDIM = 3, 2


class Tiny(nn.Module):
    """A denoiser on the contract ``(x_t, t, s, cond) -> V`` for x (N, ...) of DIM
    elements per sample, optionally with batch norm and dropout."""

    def __init__(self, seed: int = 0, *, bn: bool = False, dropout: float = 0.0) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            layers: list[nn.Module] = [nn.Linear(DIM + 2 + CDIM, 16)]
            if bn:
                layers.append(nn.BatchNorm1d(16))
            layers += [nn.SiLU(), nn.Dropout(dropout), nn.Linear(16, DIM)]
            self.net = nn.Sequential(*layers)

    def forward(self, x, t, s, cond):
        flat = x.flatten(1)
        feats = [flat, t[:, None].to(x.dtype), (t - s)[:, None].to(x.dtype), cond.to(x.dtype)]
        return self.net(torch.cat(feats, dim=1)).view_as(x)


class Counting(nn.Module):
    """Records each call: (grad enabled, training flag, inputs)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.calls: list[tuple[bool, bool, tuple]] = []

    def forward(self, x, t, s, cond):
        self.calls.append((torch.is_grad_enabled(), self.training, (x, t, s, cond)))
        return self.inner(x, t, s, cond)


def _batch(n=5, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(n, DIM, generator=g, dtype=dtype)
    cond = torch.randn(n, CDIM, generator=g, dtype=dtype)
    eps = torch.randn(n, DIM, generator=g, dtype=dtype)
    eps_prime = torch.randn(n, DIM, generator=g, dtype=dtype)
    return x0, cond, torch.zeros(1, CDIM, dtype=dtype), eps, eps_prime


T = torch.tensor([0.9, 0.5, 0.3, 0.02, 0.7, 1.0])
S = torch.tensor([0.4, 0.5, 0.1, 0.01, 0.0, 0.6])


def _naive(model, ema, x0, cond, null, t, s, eps, eps_prime, *, renorm, online=False, t_min=0.05):
    """Eq. 21 in float64, sample by sample, written from the paper: λ, x0 + λ x_self."""

    def clean(m, x, tt, ss, c):
        v = m(x[None], torch.tensor([tt], dtype=x.dtype), torch.tensor([ss], dtype=x.dtype), c)
        return x - tt * v[0]

    total = 0.0
    for i in range(x0.shape[0]):
        ti, si = float(t[i]), float(s[i])
        x_t = (1 - ti) * x0[i] + ti * eps[i]
        x_hat = clean(model, x_t, ti, si, cond[i : i + 1])
        with torch.no_grad():
            if si == ti:
                target = x0[i]
            else:
                x_s = (1 - si) * x_hat + si * eps_prime[i]
                g_c = clean(model if online else ema, x_s, si, si, cond[i : i + 1])
                g_null = clean(model, x_s, si, si, null)
                x_self = x_hat - (g_null - g_c)
                if ti == 1.0:  # λ = ∞: the merged direction is x_self
                    merged, lam = x_self, math.inf
                else:
                    lam = ti / (1 - ti) - si / (1 - si)
                    merged = x0[i] + lam * x_self
                if renorm:
                    target = merged * x0[i].norm() / merged.norm()
                else:
                    target = x_self if lam == math.inf else merged / (1 + lam)
        total = total + (x_hat - target).square().mean() / max(ti, t_min) ** 2
    return total / x0.shape[0]


# --- pure functions ---------------------------------------------------------------------


def test_lambda_against_float64():
    got = lambda_st(T, S)
    for i in range(len(T)):
        ti, si = float(T[i]), float(S[i])
        if si == ti:
            assert got[i] == 0
        elif ti == 1.0:
            assert got[i] == math.inf
        else:
            assert float(got[i]) == pytest.approx(ti / (1 - ti) - si / (1 - si), rel=1e-6)
    assert float(lambda_st(1.0, 1.0)) == 0.0
    assert lambda_st(T, S, lambda_clamp=1.0).max() == 1.0


def test_beta_against_float64_and_its_limits():
    t = torch.rand(200, dtype=torch.float64) * 0.999
    s = t * torch.rand(200, dtype=torch.float64)
    lam = t / (1 - t) - s / (1 - s)
    assert torch.allclose(merge_beta(t, s), lam / (1 + lam), rtol=1e-12, atol=1e-12)
    edge = merge_beta(
        torch.tensor([1.0, 1.0, 0.3, 0.0, 1.0]), torch.tensor([0.0, 0.5, 0.3, 0.0, 1.0])
    )
    assert edge.tolist() == [1.0, 1.0, 0.0, 0.0, 0.0]
    assert torch.isfinite(merge_beta(T, S)).all()
    clamped = merge_beta(T, S, lambda_clamp=10.0)
    assert clamped.max() == pytest.approx(10 / 11) and torch.equal(clamped[1], torch.tensor(0.0))


def test_renormalized_target_against_float64():
    g = torch.Generator().manual_seed(0)
    x0, x_self = torch.randn(4, 2, 3, 3, generator=g), torch.randn(4, 2, 3, 3, generator=g)
    beta = torch.tensor([0.0, 0.3, 1.0, 0.7])
    got = renormalized_target(x0, x_self, beta)
    for i in range(4):
        a, b, bi = x0[i].double(), x_self[i].double(), float(beta[i])
        x_dir = (1 - bi) * a + bi * b
        want = x_dir * a.norm() / x_dir.norm()
        assert torch.allclose(got[i].double(), want, atol=1e-6)
    norms = got.flatten(1).norm(dim=1)
    assert torch.allclose(norms, x0.flatten(1).norm(dim=1), rtol=1e-5)
    assert torch.equal(got[0], x0[0])  # β = 0: exactly x0
    token = renormalized_target(x0, x_self, beta, scope="token")
    assert torch.allclose(token.norm(dim=1), x0.norm(dim=1), rtol=1e-5)
    assert not torch.allclose(token, got)
    zero = renormalized_target(x0[:1], -x0[:1], torch.tensor([0.5]))  # x_dir = 0: no NaN
    assert torch.isfinite(zero).all()


def test_tau_rises_over_the_anneal_fraction():
    assert tau_at(0.0, 0.4) == 0.0
    assert tau_at(0.2, 0.4) == pytest.approx(0.5)
    assert tau_at(0.4, 0.4) == 1.0 and tau_at(0.9, 0.4) == 1.0
    assert tau_at(0.0, 0.0) == 1.0


def test_draw_times_distribution_shift_and_reproducibility():
    def draw(**kw):
        return draw_times(20000, generator=torch.Generator().manual_seed(0), **kw)

    t, s = draw(tau=0.6)
    assert t.dtype == torch.float32 and t.shape == (20000,)
    assert torch.equal(t, draw(tau=0.6)[0]) and torch.equal(s, draw(tau=0.6)[1])
    same = s == t
    assert same.float().mean().item() == pytest.approx(0.5, abs=0.02)
    assert ((s >= (1 - 0.6) * t - 1e-7) & (s <= t)).all()
    gap = ((t - s) / t)[~same]
    assert gap.max().item() == pytest.approx(0.6, abs=0.01)
    assert t.mean().item() == pytest.approx(0.5, abs=0.01)
    t0, s0 = draw(tau=0.0)
    assert torch.equal(s0, t0)
    mu = 0.7
    t_mu = draw(tau=0.6, mu=mu)[0].double()
    want = math.exp(mu) / (math.exp(mu) + 1 / t.double() - 1)
    assert torch.allclose(t_mu, want, atol=1e-6)


# --- the evaluator pass -----------------------------------------------------------------


def test_evaluate_leaves_modes_statistics_parameters_and_grads_alone():
    model = Tiny(bn=True, dropout=0.5)
    model.train()
    model.net[0].eval()  # a submodule in its own mode
    x = torch.randn(8, DIM)
    t, s, c = torch.full((8,), 0.5), torch.full((8,), 0.25), torch.randn(8, CDIM)
    model(x, t, s, c).square().sum().backward()  # BN statistics move, grads exist
    modes = {name: m.training for name, m in model.named_modules()}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    grads = {k: p.grad.clone() for k, p in model.named_parameters()}
    rng = torch.get_rng_state()

    out = evaluate(model, x, t, s, c)

    assert not out.requires_grad and out.shape == x.shape
    assert {name: m.training for name, m in model.named_modules()} == modes
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k  # running mean/var, num_batches_tracked, weights
    for k, p in model.named_parameters():
        assert torch.equal(p.grad, grads[k]), k
    assert torch.equal(torch.get_rng_state(), rng)  # dropout drew nothing
    reference = copy.deepcopy(model).eval()
    with torch.no_grad():
        assert torch.equal(out, reference(x, t, s, c))


def test_evaluate_restores_modes_after_an_error():
    class Failing(Tiny):
        def forward(self, x, t, s, cond):
            raise RuntimeError("boom")

    model = Failing(bn=True).train()
    with pytest.raises(RuntimeError, match="boom"):
        evaluate(model, torch.randn(2, DIM), torch.ones(2), torch.ones(2), torch.randn(2, CDIM))
    assert all(m.training for m in model.modules())


# --- the loss ---------------------------------------------------------------------------


@pytest.mark.parametrize("renorm", [True, False])
@pytest.mark.parametrize("branch", ["ema", "online"])
def test_loss_and_gradient_against_float64(renorm, branch):
    model, ema = Tiny(0), Tiny(1)
    x0, cond, null, eps, eps_prime = _batch(n=len(T))
    loss = SelfELoss(renorm=renorm, cond_branch=branch)
    total, parts = loss.loss_at(
        model, x0, cond, null, T, S, eps, eps_prime=eps_prime, ema_model=ema
    )
    total.backward()

    m64, e64 = copy.deepcopy(model).double(), copy.deepcopy(ema).double()
    for p in m64.parameters():
        p.grad = None
    d = [v.double() for v in (x0, cond, null, eps, eps_prime)]
    want = _naive(m64, e64, d[0], d[1], d[2], T.double(), S.double(), d[3], d[4],
                  renorm=renorm, online=branch == "online")  # fmt: skip
    want.backward()
    assert total.dim() == 0 and total.item() == pytest.approx(want.item(), rel=1e-5)
    for (name, p), p64 in zip(model.named_parameters(), m64.parameters()):
        assert torch.allclose(p.grad.double(), p64.grad, rtol=1e-4, atol=1e-6), name
    assert all(p.grad is None for p in ema.parameters())
    assert set(parts) == {"data", "self_eval"} and not any(v.requires_grad for v in parts.values())
    w = 1 / T.clamp_min(0.05).square()
    x_hat = (1 - T[:, None]) * x0 + T[:, None] * eps
    with torch.no_grad():
        x_hat = x_hat - T[:, None] * model(x_hat, T, S, cond)
    assert parts["data"].item() == pytest.approx(
        (w * (x_hat - x0).square().mean(1)).mean().item(), rel=1e-5
    )


def test_at_s_equal_t_the_loss_is_the_data_term_and_the_velocity_mse():
    model = Counting(Tiny())
    x0, cond, null, eps, eps_prime = _batch(n=4)
    t = torch.tensor([0.9, 0.5, 0.2, 0.06])
    loss = SelfELoss(cond_branch="online")
    total, parts = loss.loss_at(model, x0, cond, null, t, t, eps, eps_prime=eps_prime)
    assert len(model.calls) == 1  # no row needs an evaluator pass
    assert total.item() == pytest.approx(parts["data"].item(), rel=1e-7)
    assert parts["self_eval"].item() == 0.0
    x_t = (1 - t[:, None]) * x0 + t[:, None] * eps
    v = model.inner(x_t, t, t, cond)
    velocity_mse = (v - (eps - x0)).square().mean()
    assert total.item() == pytest.approx(velocity_mse.item(), abs=1e-6)
    fm, fm_parts = SelfELoss("flow_matching").loss_at(model, x0, cond, null, t, t, eps)
    assert fm.item() == pytest.approx(total.item(), rel=1e-7)
    assert set(fm_parts) == {"data"}


def test_flow_matching_is_one_pass_with_s_equal_t():
    model = Counting(Tiny())
    x0, cond, null, *_ = _batch(n=6)
    total, _ = SelfELoss("flow_matching")(
        model, x0, cond, null, generator=torch.Generator().manual_seed(0), progress=0.9
    )
    assert len(model.calls) == 1
    grad_on, _, (_, t, s, _) = model.calls[0]
    assert grad_on and torch.equal(s, t)
    total.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_self_evaluation_gradient_is_exactly_two_delta():
    model = Tiny().double()
    g = torch.Generator().manual_seed(1)
    x_hat = torch.randn(4, DIM, generator=g, dtype=torch.float64, requires_grad=True)
    s = torch.tensor([0.7, 0.3, 0.5, 0.05], dtype=torch.float64)
    eps_prime = torch.randn(4, DIM, generator=g, dtype=torch.float64)
    cond = torch.randn(4, CDIM, generator=g, dtype=torch.float64)
    null = torch.zeros(4, CDIM, dtype=torch.float64)
    x_self, delta, x_s = self_evaluation(model, x_hat, s, eps_prime, cond, null)
    (x_hat - x_self).square().sum().backward()
    assert torch.allclose(x_hat.grad, 2 * delta, rtol=0, atol=1e-12)
    with torch.no_grad():
        want_xs = (1 - s[:, None]) * x_hat + s[:, None] * eps_prime
        g_null = x_s - s[:, None] * model(x_s, s, s, null)
        g_c = x_s - s[:, None] * model(x_s, s, s, cond)
    assert torch.allclose(x_s, want_xs, atol=1e-12)
    assert torch.allclose(delta, g_null - g_c, atol=1e-12)
    assert all(p.grad is None for p in model.parameters())


def test_gradients_come_only_through_the_x0_pass():
    model, ema = Counting(Tiny(0)), Counting(Tiny(1))
    model.train()
    x0, cond, null, *_ = _batch(n=8)
    total, _ = SelfELoss()(
        model, x0, cond, null, generator=torch.Generator().manual_seed(0), progress=1.0,
        ema_model=ema,
    )  # fmt: skip
    calls = [(g, tr) for g, tr, _ in model.calls]
    assert calls == [(True, True), (False, False)]  # x̂0 pass, then the unconditional one
    assert [(g, tr) for g, tr, _ in ema.calls] == [(False, False)]  # the conditional one
    assert model.training and all(m.training for m in model.modules())
    total.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert all(p.grad is None for p in ema.parameters())


def test_the_draws_of_a_call_and_the_renoise_switch():
    model, ema = Tiny(0), Tiny(1)
    x0, cond, null, *_ = _batch(n=8)
    for renoise in ("fresh", "shared"):
        loss = SelfELoss(renoise_eps=renoise)
        g = torch.Generator().manual_seed(3)
        got, _ = loss(model, x0, cond, null, generator=g, progress=0.5, ema_model=ema)
        g = torch.Generator().manual_seed(3)
        t, s = loss.draw(8, generator=g, progress=0.5)
        eps = torch.randn(x0.shape, generator=g)
        eps_prime = torch.randn(x0.shape, generator=g) if renoise == "fresh" else None
        want, _ = loss.loss_at(
            model, x0, cond, null, t, s, eps, eps_prime=eps_prime, progress=0.5, ema_model=ema
        )
        assert got.item() == pytest.approx(want.item(), rel=1e-6)
    counting = Counting(Tiny(0))
    _, _, _, eps, eps_prime = _batch(n=len(T))
    SelfELoss(cond_branch="online").loss_at(counting, x0[:6], cond[:6], null, T, S, eps)
    x_t, _, _, _ = counting.calls[0][2]
    rows = S < T
    with torch.no_grad():
        x_hat = x_t - T[:, None] * counting.inner(x_t, T, S, cond[:6])
    x_s = counting.calls[1][2][0]
    want = (1 - S[rows, None]) * x_hat[rows] + S[rows, None] * eps[rows]
    assert torch.allclose(x_s, want, atol=1e-6)  # shared: ε′ = ε


def test_t_equal_one_is_finite():
    x0, cond, null, eps, eps_prime = _batch(n=3)
    t, s = torch.ones(3), torch.tensor([0.0, 0.5, 1.0])
    total, parts = SelfELoss(cond_branch="online").loss_at(
        Tiny(), x0, cond, null, t, s, eps, eps_prime=eps_prime
    )
    assert torch.isfinite(total) and all(torch.isfinite(v) for v in parts.values())


def test_the_auxiliary_fake_score_term():
    model, ema = Counting(Tiny(0)), Tiny(1)
    x0, cond, null, eps, eps_prime = _batch(n=len(T))
    fake = cond + 1.0
    loss = SelfELoss(aux=True, aux_start=0.5)
    total, parts = loss.loss_at(
        model, x0, cond, null, T, S, eps, eps_prime=eps_prime, progress=0.6, ema_model=ema,
        fake_cond=fake,
    )  # fmt: skip
    assert [g for g, _, _ in model.calls] == [True, False, False, True]  # + the ema pass: 5
    rows = S < T
    with torch.no_grad():
        x_t = (1 - T[:, None]) * x0 + T[:, None] * eps
        x_hat = x_t - T[:, None] * model.inner(x_t, T, S, cond)
        x_s = (1 - S[:, None]) * x_hat + S[:, None] * eps_prime
        g_fake = x_s - S[:, None] * model.inner(x_s, S, S, fake)
        want_fake = (g_fake - x_hat).square().mean()
    assert parts["aux_fake"].item() == pytest.approx(want_fake.item(), rel=1e-5)
    plain, _ = SelfELoss(aux=False).loss_at(
        model.inner, x0, cond, null, T, S, eps, eps_prime=eps_prime, ema_model=ema
    )
    x_self, delta, xs = self_evaluation(
        model.inner, x_hat[rows], S[rows], eps_prime[rows], cond[rows], null.expand(6, -1)[rows],
        cond_model=ema, fake_cond=fake[rows], k=0.9,
    )  # fmt: skip
    with torch.no_grad():
        sr = S[rows, None]
        g_null = xs - sr * model.inner(xs, S[rows], S[rows], null.expand(int(rows.sum()), -1))
        g_c = xs - sr * ema(xs, S[rows], S[rows], cond[rows])
        g_f = xs - sr * model.inner(xs, S[rows], S[rows], fake[rows])
    assert torch.allclose(delta, 0.9 * (g_null - g_c) + 0.1 * (g_f - g_c), atol=1e-6)
    assert torch.allclose(x_self, x_hat[rows] - delta, atol=1e-6)
    full_self = x_hat.clone()
    full_self[rows] = x_self
    target = renormalized_target(x0, full_self, merge_beta(T, S))
    w = 1 / T.clamp_min(0.05).square()
    main = (w * (x_hat - target).square().mean(1)).mean()
    assert total.item() == pytest.approx(main.item() + want_fake.item(), rel=1e-5)

    model.calls.clear()
    total.backward()
    assert all(p.grad is not None for p in model.parameters())
    before, _ = loss.loss_at(
        model, x0, cond, null, T, S, eps, eps_prime=eps_prime, progress=0.4, ema_model=ema,
        fake_cond=fake,
    )  # fmt: skip
    assert len(model.calls) == 2  # before aux_start: the plain objective
    assert before.item() == pytest.approx(plain.item(), rel=1e-6)


def test_bf16_autocast_gives_a_finite_float32_loss_near_fp32():
    model, ema = Tiny(0), Tiny(1)
    x0, cond, null, *_ = _batch(n=16)
    loss = SelfELoss()
    full, _ = loss(model, x0, cond, null, generator=torch.Generator().manual_seed(0), ema_model=ema)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        half, _ = loss(
            model, x0, cond, null, generator=torch.Generator().manual_seed(0), ema_model=ema
        )
    assert half.dtype == torch.float32 and torch.isfinite(half)
    assert half.item() == pytest.approx(full.item(), rel=0.05)
    half.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


# --- bad input --------------------------------------------------------------------------


def _one_line(excinfo) -> str:
    text = str(excinfo.value)
    assert "\n" not in text
    return text


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"mode": "selfe"}, "did you mean 'self_e'"),
        ({"mode": "flow_match"}, "did you mean 'flow_matching'"),
        ({"renorm_scope": "tokens"}, "did you mean 'token'"),
        ({"cond_branch": "emma"}, "did you mean 'ema'"),
        ({"renoise_eps": "fres"}, "did you mean 'fresh'"),
        ({"t_min": 0.0}, "t_min must be a positive"),
        ({"t_min": 2.0}, r"t_min must lie in \(0, 1\]"),
        ({"renorm": "yes"}, "renorm must be a bool"),
        ({"lambda_clamp": -1.0}, "lambda_clamp must be a positive"),
        ({"aux_k": 1.5}, r"aux_k must lie in \[0, 1\]"),
        ({"s_equal_prob": -0.1}, "s_equal_prob"),
        ({"se_scale": float("nan")}, "se_scale"),
    ],
)
def test_bad_options_are_one_line_errors(options, match):
    with pytest.raises(ValueError, match=match) as excinfo:
        SelfELoss(**options)
    assert _one_line(excinfo).startswith("self_e: ")


def _call(loss=None, **over):
    x0, cond, null, *_ = _batch(n=4)
    args = {"model": Tiny(), "x0": x0, "cond": cond, "null_cond": null, "ema_model": Tiny(1)}
    args.update(over)
    loss = loss or SelfELoss()
    return loss(
        args.pop("model"), args.pop("x0"), args.pop("cond"), args.pop("null_cond"),
        generator=torch.Generator().manual_seed(0), **args,
    )  # fmt: skip


class Wrong(nn.Module):
    def forward(self, x, t, s, cond):
        return x[:, :1]


@pytest.mark.parametrize(
    ("over", "match"),
    [
        ({"x0": torch.randn(4)}, "x0 must be clean float data"),
        ({"x0": torch.full((4, DIM), float("nan"))}, "x0 holds NaN or inf"),
        ({"cond": torch.randn(3, CDIM)}, "cond must be"),
        ({"cond": torch.full((4, CDIM), float("inf"))}, "cond holds NaN or inf"),
        ({"null_cond": torch.zeros(1, CDIM + 1)}, "null_cond .* must be shaped like cond"),
        ({"ema_model": None}, "needs ema_model="),
        ({"model": Wrong()}, "velocity like x_t"),
        ({"progress": 1.5}, r"progress must lie in \[0, 1\]"),
        ({"fake_cond": torch.zeros(4, CDIM)}, "set aux=True"),
    ],
)
def test_bad_calls_are_one_line_errors(over, match):
    with pytest.raises(ValueError, match=match) as excinfo:
        _call(**over)
    _one_line(excinfo)


def test_bad_times_and_helpers_are_one_line_errors():
    x0, cond, null, eps, _ = _batch(n=2)
    loss = SelfELoss(cond_branch="online")
    cases = [
        (lambda: loss.loss_at(Tiny(), x0, cond, null, torch.tensor([0.5, 0.5]),
                              torch.tensor([0.6, 0.1]), eps), "0 <= s <= t <= 1"),
        (lambda: loss.loss_at(Tiny(), x0, cond, null, torch.tensor([0.5]),
                              torch.tensor([0.1]), eps), r"t and s must be \(N,\)"),
        (lambda: loss.loss_at(Tiny(), x0, cond, null, torch.tensor([0.5, 0.5]),
                              torch.tensor([0.1, 0.1]), eps[:1]), "eps .* must be shaped"),
        (lambda: _call(SelfELoss(aux=True)), "aux=True needs fake_cond="),
        (lambda: merge_beta(torch.tensor([1.2]), torch.tensor([0.1])), "0 <= s <= t <= 1"),
        (lambda: draw_times(4, tau=2.0), r"tau must lie in \[0, 1\]"),
        (lambda: draw_times(0, tau=0.5), "n must be a positive int"),
        (lambda: tau_at(-0.1, 0.4), "progress"),
        (lambda: renormalized_target(x0, x0[:1], 0.5), "x_self .* must have x0's shape"),
        (lambda: renormalized_target(x0, x0, torch.ones(3)), r"beta must be \(N,\)"),
        (lambda: renormalized_target(x0, x0, 0.5, scope="pixel"), "unknown scope 'pixel'"),
        (lambda: evaluate(Wrong(), x0, eps[:, 0], eps[:, 0], cond), "velocity like x_t"),
    ]  # fmt: skip
    for fn, match in cases:
        with pytest.raises(ValueError, match=match) as excinfo:
            fn()
        _one_line(excinfo)
