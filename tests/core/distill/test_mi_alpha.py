"""MI-alpha: the bound against its loop, exact alpha = 0 / 1, stability, gradient paths and the
correlated-Gaussian sanity check of docs/distillation.md "mi_alpha"."""

from __future__ import annotations

import math

import pytest
import torch

import manyview
from manyview.distill.mi_alpha import MIAlpha, log_loo_mean_exp, mi_lower_bound

from . import reference_sd as R
from ._helpers import RTOL, randn


@pytest.mark.parametrize("alpha", [0.0, 0.01, 0.5, 0.99, 1.0])
@pytest.mark.parametrize("n", [2, 3, 7])
def test_bound_matches_naive_loop(alpha, n):
    scores = randn(n, n, seed=n, scale=2.0)
    psi = randn(n, seed=n + 100)
    value = mi_lower_bound(scores, psi, alpha)
    expected = R.mi_alpha(scores, psi, alpha)
    assert value.dtype == torch.float64
    assert math.isclose(value.item(), expected, rel_tol=RTOL, abs_tol=1e-12), (value, expected)


def test_module_matches_naive_loop_on_its_critic_scores():
    torch.manual_seed(0)
    loss = MIAlpha(5, 3, alpha=0.3, hidden_dim=16, embed_dim=4).double()
    s, t = randn(6, 5, seed=1), randn(6, 3, seed=2)
    scores = loss.critic_scores(s, t)
    manual = loss.teacher_head(t) @ loss.student_head(s).T
    assert torch.allclose(scores, manual, rtol=1e-12)
    expected = R.mi_alpha(scores, loss.log_baseline(t), 0.3)
    assert math.isclose(-loss(s, targets=t).item(), expected, rel_tol=RTOL)
    # (N, T, D) features are flattened to (N, T*D) (Distiller takes the first token)
    loss3 = MIAlpha(6, 3, hidden_dim=8, embed_dim=4).double()
    s3 = randn(6, 3, 2, seed=7)
    assert torch.equal(loss3(s3, targets=t), loss3(s3.reshape(6, 6), targets=t))


def test_alpha_limits_are_exact():
    scores, psi = randn(6, 6, seed=3), randn(6, seed=4)
    off = ~torch.eye(6, dtype=torch.bool)
    # alpha = 0: TUBA with the learned baseline
    tuba = 1 + (scores.diagonal() - psi).mean() - (scores - psi[:, None])[off].exp().mean()
    assert torch.allclose(mi_lower_bound(scores, psi, 0.0), tuba, rtol=1e-12)
    # alpha = 1: no baseline needed, the marginal term is exactly 1, the bound <= log(N - 1)
    one = mi_lower_bound(scores, None, 1.0)
    joint = (scores.diagonal()[:, None] - log_loo_mean_exp(scores))[off].mean()
    assert torch.allclose(one, joint, rtol=1e-12)
    assert torch.allclose(
        mi_lower_bound(100 * torch.eye(6, dtype=torch.float64), None, 1.0),
        torch.tensor(math.log(5), dtype=torch.float64),
        atol=1e-12,
    )


def test_log_loo_mean_exp_is_stable_and_exact():
    x = randn(4, 5, seed=5)
    naive = torch.stack(
        [
            torch.stack([x[i, [k for k in range(5) if k != j]].logsumexp(0) for j in range(5)])
            for i in range(4)
        ]
    ) - math.log(4)
    assert torch.allclose(log_loo_mean_exp(x), naive, rtol=1e-13)
    # one dominant entry per row: leaving it out must not cancel to -inf; gradients finite
    big = torch.tensor([[1000.0, 0.0, 1.0], [0.0, -1000.0, 2000.0]], requires_grad=True)
    out = log_loo_mean_exp(big)
    expected = torch.tensor(
        [
            [math.log((1 + math.e) / 2), 1000 - math.log(2), 1000 - math.log(2)],
            [2000 - math.log(2), 2000 - math.log(2), math.log((1 + math.exp(-1000)) / 2)],
        ]
    )
    assert torch.allclose(out.detach(), expected, rtol=1e-6)
    out.sum().backward()
    assert torch.isfinite(big.grad).all()
    # float32 scores far apart: the bound is finite for alpha in (0, 1]
    s32 = 300 * torch.randn(16, 16, generator=torch.Generator().manual_seed(0))
    for a in (0.5, 1.0):
        assert torch.isfinite(mi_lower_bound(s32, torch.zeros(16), a))


def test_gradient_reaches_student_and_critic_never_the_teacher():
    torch.manual_seed(0)
    student, teacher = torch.nn.Linear(4, 6), torch.nn.Linear(4, 5).requires_grad_(False)
    loss = MIAlpha(6, 5, hidden_dim=16, embed_dim=8)
    x = torch.randn(10, 4)
    with torch.no_grad():
        t = teacher(x)
    loss(student(x), targets=t).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in student.parameters())
    assert all(p.grad is not None for p in loss.parameters())
    assert all(p.grad is None for p in teacher.parameters())
    with pytest.raises(ValueError, match="require grad"):
        loss(student(x), targets=torch.nn.Linear(4, 5)(x))
    assert MIAlpha(6, 5, alpha=1.0).baseline is None


def test_state_dict_round_trip():
    a, b = MIAlpha(4, 3, hidden_dim=8), MIAlpha(4, 3, hidden_dim=8)
    b.load_state_dict(a.state_dict())
    s, t = torch.randn(5, 4), torch.randn(5, 3)
    assert torch.equal(a(s, targets=t), b(s, targets=t))


def test_correlated_gaussians_bound_stays_below_the_true_mi(one_thread):
    """d = 8, rho = 0.8, I = -(d/2) log(1 - rho^2) = 4.09 nats. After training the critic the
    alpha = 0.5 estimate on fresh batches is below I (plus sampling noise) and well above 0;
    alpha = 1 never exceeds log(N - 1)."""
    d, rho, n = 8, 0.8, 64
    true_mi = -d / 2 * math.log(1 - rho**2)
    gen = torch.Generator().manual_seed(0)

    def sample():
        x = torch.randn(n, d, generator=gen)
        y = rho * x + math.sqrt(1 - rho**2) * torch.randn(n, d, generator=gen)
        return x, y

    torch.manual_seed(0)
    estimates = {}
    for alpha in (0.5, 1.0):
        loss = MIAlpha(d, d, alpha=alpha, hidden_dim=128, embed_dim=32, baseline_hidden_dim=128)
        opt = R.Adam(loss.parameters(), lr=1e-3)
        for _ in range(400):
            s, t = sample()
            value = loss(s, targets=t)
            opt.zero_grad()
            value.backward()
            opt.step()
        with torch.no_grad():
            values = [-loss(s, targets=t).item() for s, t in (sample() for _ in range(20))]
        estimates[alpha] = sum(values) / len(values)
    assert 1.5 < estimates[0.5] < true_mi + 0.25, estimates
    assert estimates[1.0] <= math.log(n - 1) + 1e-6, estimates
    assert estimates[1.0] > 1.5


@pytest.mark.parametrize("alpha", [-0.1, 1.5, float("nan")])
def test_alpha_outside_unit_interval_is_refused(alpha):
    with pytest.raises(ValueError, match="alpha"):
        MIAlpha(4, 4, alpha=alpha)
    with pytest.raises(ValueError, match="alpha"):
        mi_lower_bound(torch.zeros(3, 3), torch.zeros(3), alpha)


def test_bad_inputs():
    loss = MIAlpha(4, 3, hidden_dim=8)
    s, t = torch.randn(5, 4), torch.randn(5, 3)
    for student, targets, match in [
        (torch.randn(5, 6), t, "student_dim"),
        (s, torch.randn(5, 7), "teacher_dim"),
        (s, t[:4], "batch"),
        (s[:1], t[:1], "at least 2"),
        (s, torch.randn(5), "teacher features"),
    ]:
        with pytest.raises(ValueError, match=match):
            loss(student, targets=targets)
    with pytest.raises(ValueError, match="targets"):
        loss(s)
    with pytest.raises(ValueError, match="log_baseline"):
        mi_lower_bound(torch.zeros(3, 3), None, 0.5)
    with pytest.raises(ValueError, match="square"):
        mi_lower_bound(torch.zeros(3, 4), torch.zeros(3), 0.5)
    with pytest.raises(ValueError, match="student_dim"):
        MIAlpha(0, 4)
    assert manyview.create("loss", "mi_alpha", student_dim=4, teacher_dim=3).alpha == 0.5


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_rows_student_is_distillers_layout_the_bound_on_the_transposed_matrix(alpha):
    # Distiller's critic(student, teacher) gives scores[i, j] = f(s_i, t_j) with the
    # baseline psi(t_i) on row i: the naive loop on the transposed teacher-row matrix.
    torch.manual_seed(1)
    teacher_rows = MIAlpha(5, 3, alpha=alpha, hidden_dim=16, embed_dim=4).double()
    student_rows = MIAlpha(5, 3, alpha=alpha, hidden_dim=16, embed_dim=4, rows="student")
    student_rows = student_rows.double()
    student_rows.load_state_dict(teacher_rows.state_dict())
    s, t = randn(6, 5, seed=11, scale=2.0), randn(6, 3, seed=12, scale=2.0)
    scores = teacher_rows.critic_scores(s, t)  # scores[i, j] = f(s_j, t_i)
    psi = teacher_rows.log_baseline(t) if alpha < 1 else None
    want = -R.mi_alpha(scores.T, psi, alpha)
    got = student_rows(s, targets=t)
    assert math.isclose(got.item(), want, rel_tol=RTOL, abs_tol=1e-12), (got, want)
    default = -R.mi_alpha(scores, psi, alpha)
    assert math.isclose(teacher_rows(s, targets=t).item(), default, rel_tol=RTOL)
    assert not math.isclose(got.item(), default, rel_tol=1e-6)  # the layouts differ
    assert "rows='student'" in repr(student_rows)


def test_rows_must_be_teacher_or_student():
    with pytest.raises(ValueError, match=r"rows must be 'teacher' .* or 'student'.*'cols'"):
        MIAlpha(4, 4, rows="cols")
