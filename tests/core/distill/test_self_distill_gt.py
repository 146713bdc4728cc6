"""Borup & Andersen self-distillation: the deep-net loss against its loop, and the kernel-ridge
derivation of docs/distillation.md "self_distill_gt", checked numerically on the official
toy."""

from __future__ import annotations

import copy
import math

import pytest
import torch

import manyview
from manyview.distill.self_distill_gt import (
    SelfDistillGT,
    estimate_alpha,
    krr_alpha_affine,
    krr_limit,
    krr_self_distillation,
    optimal_alpha,
    parameter_norm_penalty,
)

from . import reference_sd as R

RTOL = 1e-9

# The official toy (Kennethborup/self_distillation, toy_example.ipynb): 11 points on [0, 1]
# from sin(2 pi x) plus noise (Mobahi et al. 2020's values), RBF gamma = 80, c = 0.2; losses
# are the MSE against sin(2 pi x) on the grid 0, 0.01, ..., 1.
TOY_Y = [
    0.38476636465198066, 1.2333967683416893, 1.33232242218057, 0.69201594888895180,
    -0.29756145531871736, -0.24189291901377769, -0.7964485769175675, -0.9616480167034174,
    -0.49672509509916934, -0.3469066003991437, 0.5589512650600734,
]  # fmt: skip
GAMMA, C = 80.0, 0.2


def rbf(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.exp(-GAMMA * (a[:, None] - b[None, :]) ** 2)


@pytest.fixture(scope="module")
def toy():
    x = torch.arange(11, dtype=torch.float64) * 0.1
    grid = torch.arange(101, dtype=torch.float64) * 0.01
    y = torch.tensor(TOY_Y, dtype=torch.float64)
    return {"K": rbf(x, x), "K_eval": rbf(grid, x), "Y": y, "z": torch.sin(2 * math.pi * grid)}


# --- the deep-net loss ----------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.0, 0.35, 0.6, 1.0])
def test_loss_matches_naive_loop(alpha):
    g = torch.Generator().manual_seed(3)
    s = 3 * torch.randn(6, 5, generator=g, dtype=torch.float64)
    t = 3 * torch.randn(6, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 5, (6,), generator=g)
    value = SelfDistillGT(alpha)(s, targets=t, labels=y)
    expected = R.self_distill_gt(s, t, y, alpha)
    assert value.dtype == torch.float64
    assert math.isclose(value.item(), expected, rel_tol=RTOL, abs_tol=1e-15)


def test_step_zero_needs_no_teacher_and_alpha_zero_no_labels():
    s, t, y = torch.randn(4, 3), torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    assert torch.allclose(
        SelfDistillGT(1.0)(s, labels=y), SelfDistillGT(1.0)(s, targets=t, labels=y)
    )
    assert torch.isfinite(SelfDistillGT(0.0)(s, targets=t))
    with pytest.raises(ValueError, match="labels"):
        SelfDistillGT(0.6)(s, targets=t)
    with pytest.raises(ValueError, match="targets"):
        SelfDistillGT(0.6)(s, labels=y)


def test_gradient_reaches_the_student_not_the_frozen_teacher():
    torch.manual_seed(0)
    student = torch.nn.Linear(4, 3)
    teacher = copy.deepcopy(student).requires_grad_(False)
    x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    with torch.no_grad():
        t = teacher(x)
    loss = SelfDistillGT(0.6)(student(x), targets=t, labels=y) + parameter_norm_penalty(student)
    loss.backward()
    assert all(p.grad is not None for p in student.parameters())
    assert all(p.grad is None for p in teacher.parameters())


def test_parameter_norm_penalty_is_the_sum_of_norms():
    m = torch.nn.Linear(3, 2)
    expected = 1e-4 * (m.weight.norm() + m.bias.norm())
    assert torch.allclose(parameter_norm_penalty(m), expected)
    with pytest.raises(ValueError, match="no trainable"):
        parameter_norm_penalty(torch.nn.Linear(2, 2).requires_grad_(False))


@pytest.mark.parametrize("alpha", [-0.1, 1.1, float("nan")])
def test_alpha_outside_unit_interval_is_refused(alpha):
    with pytest.raises(ValueError, match="alpha"):
        SelfDistillGT(alpha)


def test_bad_inputs():
    loss = SelfDistillGT()
    s, t, y = torch.randn(4, 3), torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    for kwargs, match in [
        ({"targets": t[:, :2], "labels": y}, "same shape"),
        ({"targets": t, "labels": y[:3]}, "shape"),
        ({"targets": t, "labels": torch.tensor([0, 1, 3, 0])}, r"\[0, 3\)"),
        ({"targets": t, "labels": y.float()}, "integer"),
    ]:
        with pytest.raises(ValueError, match=match):
            loss(s, **kwargs)
    with pytest.raises(ValueError, match="dimensions"):
        loss(torch.randn(4, 2, 3), targets=torch.randn(4, 2, 3), labels=y)
    assert manyview.create("loss", "self_distill_gt", alpha=0.3).alpha == 0.3


# --- kernel ridge: the derivation -----------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.0, 0.35, 0.8])
def test_recursion_equals_the_b_product_and_its_eigen_form(toy, alpha):
    K, Y = toy["K"], toy["Y"]
    steps = 8
    fs = krr_self_distillation(K, Y, C, alpha, steps)
    eye = torch.eye(11, dtype=torch.float64)
    A = K @ torch.linalg.inv(K + C * eye)
    B = A.clone()
    d, V = torch.linalg.eigh(K)
    b = d / (d + C)
    for tau in range(steps + 1):
        if tau:
            B = A @ ((1 - alpha) * B + alpha * eye)
            b = d / (d + C) * ((1 - alpha) * b + alpha)
        assert torch.allclose(fs[tau], B @ Y, rtol=0, atol=1e-12)
        assert torch.allclose(B, V @ torch.diag(b) @ V.T, rtol=0, atol=1e-12)


@pytest.mark.parametrize("alpha", [0.2, 0.35, 0.6, 1.0])
def test_limit_is_krr_with_c_over_alpha(toy, alpha):
    K, Y, K_eval = toy["K"], toy["Y"], toy["K_eval"]
    eye = torch.eye(11, dtype=torch.float64)
    limit = krr_limit(K, Y, C, alpha)
    expected = K @ torch.linalg.solve(K + (C / alpha) * eye, Y)
    assert torch.allclose(limit, expected, rtol=0, atol=1e-12)
    # the fixed point of f = A(alpha Y + (1 - alpha) f) ...
    A = K @ torch.linalg.inv(K + C * eye)
    fixed = torch.linalg.solve(eye - (1 - alpha) * A, alpha * A @ Y)
    assert torch.allclose(limit, fixed, rtol=0, atol=1e-10)
    # ... which the recursion reaches, at the training and the evaluation points
    steps = 400
    assert torch.allclose(krr_self_distillation(K, Y, C, alpha, steps)[-1], limit, atol=1e-10)
    far = krr_self_distillation(K, Y, C, alpha, steps, K_eval=K_eval)[-1]
    assert torch.allclose(far, krr_limit(K, Y, C, alpha, K_eval=K_eval), rtol=0, atol=1e-10)


def test_alpha_zero_decays_to_zero(toy):
    fs = krr_self_distillation(toy["K"], toy["Y"], C, 0.0, 600)
    norms = fs.norm(dim=1)
    assert (norms[1:] < norms[:-1]).all()
    assert norms[-1] < 1e-10
    assert torch.equal(krr_limit(toy["K"], toy["Y"], C, 0.0), torch.zeros(11, dtype=torch.float64))


def test_readme_toy_losses_are_reproduced(toy):
    """README of Kennethborup/self_distillation: losses vs the true sinusoid, steps 1-6 and the
    limit. README step s is f^(s-1) here; the second column is alpha = 0.35 (the README)."""
    table = {
        0.0: ([0.16477, 0.15076, 0.14915, 0.15561, 0.16735, 0.18251], 0.49505),
        0.35: ([0.16477, 0.15424, 0.15089, 0.14983, 0.14954, 0.14948], 0.14959),
    }
    for alpha, (steps, limit) in table.items():
        fs = krr_self_distillation(toy["K"], toy["Y"], C, alpha, 5, K_eval=toy["K_eval"])
        losses = ((fs - toy["z"]) ** 2).mean(dim=1).tolist()
        assert [round(v, 5) for v in losses] == steps
        f_inf = krr_limit(toy["K"], toy["Y"], C, alpha, K_eval=toy["K_eval"])
        assert round(((f_inf - toy["z"]) ** 2).mean().item(), 5) == limit


def _affine_at_step(toy, alpha: float, tau: int):
    """(p, q) of step tau + 1 at the grid, after tau steps with ``alpha``."""
    f_prev = krr_self_distillation(toy["K"], toy["Y"], C, alpha, tau)[-1]
    return krr_alpha_affine(toy["K"], toy["Y"], f_prev, C, K_eval=toy["K_eval"]), f_prev


@pytest.mark.parametrize(("alpha", "tau"), [(0.0, 2), (0.35, 3), (0.0, 0), (0.0, 5)])
def test_optimal_alpha_equals_a_line_search(toy, alpha, tau):
    (p, q), f_prev = _affine_at_step(toy, alpha, tau)
    z = toy["z"]
    # p + a q really are the next step's predictions
    for a in (0.0, 0.3, 1.0):
        targets = a * toy["Y"] + (1 - a) * f_prev
        direct = toy["K_eval"] @ torch.linalg.solve(
            toy["K"] + C * torch.eye(11, dtype=torch.float64), targets
        )
        assert torch.allclose(p + a * q, direct, rtol=0, atol=1e-12)
    a_star = optimal_alpha(z, p, q, clip=False)
    grid = torch.arange(-20000, 20001, dtype=torch.float64) * 1e-4  # [-2, 2] step 1e-4
    errors = ((z[None, :] - p[None, :] - grid[:, None] * q[None, :]) ** 2).sum(dim=1)
    best = grid[errors.argmin()].item()
    assert abs(best - a_star) <= 0.5e-4 + 1e-12, (best, a_star)
    assert optimal_alpha(z, p, q) == min(max(a_star, 0.0), 1.0)


def test_two_run_estimate_is_exact_for_kernel_ridge(toy):
    (p, q), _ = _affine_at_step(toy, 0.0, 3)
    f0, f1 = p, p + q  # students trained with alpha = 0 and alpha = 1 against f^(3)
    z = toy["z"]
    assert math.isclose(estimate_alpha(f0, f1, z), optimal_alpha(z, p, q), rel_tol=1e-12)
    assert math.isclose(
        estimate_alpha(f0, f1, z, clip=False), optimal_alpha(z, p, q, clip=False), rel_tol=1e-12
    )


def test_krr_bad_inputs(toy):
    K, Y = toy["K"], toy["Y"]
    for call, match in [
        (lambda: krr_self_distillation(K, Y, 0.0, 0.5, 3), "c must be"),
        (lambda: krr_self_distillation(K, Y, C, 1.5, 3), "alpha"),
        (lambda: krr_self_distillation(K, Y, C, 0.5, -1), "steps"),
        (lambda: krr_self_distillation(K[:, :5], Y, C, 0.5, 1), "square"),
        (lambda: krr_limit(K, Y[:5], C, 0.5), "Y must be"),
        (lambda: krr_limit(K, Y, C, 0.5, K_eval=K[:, :3]), "K_eval"),
        (lambda: optimal_alpha(Y, Y, torch.zeros(11)), "q is zero"),
        (lambda: optimal_alpha(Y, Y[:3], Y), "one shape"),
    ]:
        with pytest.raises(ValueError, match=match):
            call()
    two = krr_self_distillation(K, torch.stack([Y, -Y], 1), C, 0.35, 2)
    assert two.shape == (3, 11, 2)
    assert torch.allclose(two[..., 1], -krr_self_distillation(K, Y, C, 0.35, 2))
