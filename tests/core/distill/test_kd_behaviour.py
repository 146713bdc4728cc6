"""Sanity checks of kd, feature, token_contrast, rkd, crd, score_kd and divergence_clip (their
sections of docs/distillation.md), and of DiSCo's teachers."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import manyview
from manyview.distill import divergences as D
from manyview.distill.divergence_clip import quantile

from ._helpers import randn


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------- divergences


def test_alpha_0_and_1_match_torch_kl_div_direction():
    t, s = randn(5, 7, seed=0, scale=2), randn(5, 7, seed=1, scale=2)
    lt, ls = t.log_softmax(-1), s.log_softmax(-1)
    # F.kl_div(input=log q, target=log p, log_target=True) is KL(p || q)
    forward = F.kl_div(ls, lt, log_target=True, reduction="none").sum(-1)
    reverse = F.kl_div(lt, ls, log_target=True, reduction="none").sum(-1)
    torch.testing.assert_close(D.jsd(t, s, 0.0), forward, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(D.jsd(t, s, 1.0), reverse, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(D.kl(t, s), forward, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(D.reverse_kl(t, s), reverse, rtol=1e-12, atol=1e-14)
    assert not torch.allclose(forward, reverse)


def test_jsd_symmetric_at_half_and_bounded_by_log2():
    t, s = randn(6, 5, seed=2, scale=3), randn(6, 5, seed=3, scale=3)
    torch.testing.assert_close(D.jsd(t, s, 0.5), D.jsd(s, t, 0.5), rtol=1e-12, atol=1e-14)
    assert (D.jsd(t, s, 0.5) <= math.log(2)).all()
    # disjoint supports reach the bound; huge logits stay finite (log-space mixture)
    a = torch.tensor([[1e4, -1e4, -1e4]], dtype=torch.float64)
    b = torch.tensor([[-1e4, 1e4, -1e4]], dtype=torch.float64)
    assert math.isclose(D.jsd(a, b, 0.5).item(), math.log(2), rel_tol=1e-12)
    for alpha in (0.1, 0.5, 0.9):
        assert torch.isfinite(D.jsd(a.float(), b.float(), alpha)).all()
    assert torch.isfinite(D.kl(a.float(), b.float())).all()


def test_divergences_zero_for_equal_logits_and_bad_alpha():
    x = randn(4, 6, seed=4, scale=5)
    for kind in D.DIVERGENCES:
        assert D.divergence(kind, x, x + 3.0, alpha=0.3).abs().max() < 1e-12  # shift-invariant
    with pytest.raises(ValueError, match="alpha"):
        D.jsd(x, x, 1.5)
    with pytest.raises(ValueError, match="same shape"):
        D.kl(x, x[:, :-1])
    with pytest.raises(ValueError, match="divergence must be one of"):
        D.divergence("js", x, x)


# ---------------------------------------------------------------------------- KD


def test_kd_zero_when_logits_equal():
    x = randn(8, 10, seed=5, scale=3)
    for divergence in D.DIVERGENCES:
        loss = manyview.create("loss", "kd", divergence=divergence)
        assert loss(x, targets=x.clone()).abs() < 1e-12


def _soft_grad_norm(temperature: float, t2: bool = True) -> float:
    s = randn(64, 10, seed=6).requires_grad_(True)
    t = randn(64, 10, seed=7)
    value = manyview.create("loss", "kd", temperature=temperature)(s, targets=t)
    if not t2:
        value = value / temperature**2
    (grad,) = torch.autograd.grad(value, s)
    return grad.norm().item()


def test_kd_t2_keeps_the_soft_gradient_comparable_across_temperatures():
    with_t2 = [_soft_grad_norm(t) for t in (2.0, 4.0, 8.0)]
    without = [_soft_grad_norm(t, t2=False) for t in (2.0, 4.0, 8.0)]
    assert max(with_t2) / min(with_t2) < 1.5, with_t2
    assert without[0] / without[2] > 10, without  # ~T^2 = 16 without the factor


def test_kd_masked_tokens_do_not_count():
    s, t = randn(3, 5, 7, seed=8), randn(3, 5, 7, seed=9)
    mask = torch.ones(3, 5, dtype=torch.bool)
    mask[:, -2:] = False
    loss = manyview.create("loss", "kd", temperature=1.0)
    a = loss(s, targets=t, mask=mask)
    s2 = s.clone()
    s2[:, -2:] = 100 * randn(3, 2, 7, seed=10)
    assert torch.equal(a, loss(s2, targets=t, mask=mask))
    torch.testing.assert_close(a, loss(s[:, :3], targets=t[:, :3]))


def test_kd_per_item_and_reduce_compose():
    s, t = randn(4, 6, 5, seed=11), randn(4, 6, 5, seed=12)
    mask = torch.rand(4, 6, generator=_g(13)) > 0.4
    w = torch.rand(4, 6, generator=_g(14), dtype=torch.float64)
    loss = manyview.create("loss", "kd", temperature=2.0)
    values = loss.per_item(s, t, mask)
    assert values.shape == (4, 6) and (values[~mask] == 0).all()
    torch.testing.assert_close(
        loss.reduce(values, mask, w), loss(s, targets=t, mask=mask, weights=w)
    )


def test_kd_stable_at_huge_logits_under_bf16():
    s = (1e4 * randn(4, 9, seed=15)).bfloat16().requires_grad_(True)
    t = (1e4 * randn(4, 9, seed=16)).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = manyview.create("loss", "kd", temperature=1.0, divergence="jsd")(s, targets=t)
    value.backward()
    assert value.dtype == torch.float32 and torch.isfinite(value)
    assert torch.isfinite(s.grad).all()


# ---------------------------------------------------------------------------- token contrast


def test_hinge_zero_when_negative_is_far_enough():
    s = torch.tensor([[-1.0, -2.0, -0.5]], dtype=torch.float64)
    a = s + torch.tensor([[0.1, -0.2, 0.0]], dtype=torch.float64)
    b = s + torch.tensor([[0.6, -0.7, 0.5]], dtype=torch.float64)  # |s-b| = m + |s-a| exactly
    loss = manyview.create("loss", "token_contrast", margin=0.5)
    assert loss(s, targets=a, negatives=b) == 0
    b_far = s + 5.0
    assert loss(s, targets=a, negatives=b_far) == 0
    assert loss(s, targets=a, negatives=s.clone()) > 0  # the negative coincides with s


# ---------------------------------------------------------------------------- clipping


def test_clipping_caps_the_per_token_loss_and_its_gradient():
    s = randn(3, 4, 6, seed=17, scale=6).requires_grad_(True)
    t = randn(3, 4, 6, seed=18, scale=6)
    base = manyview.create("loss", "kd", temperature=1.0)
    kappa = 0.5
    values = base.per_item(s.detach(), t)
    assert (values > kappa).any() and (values < kappa).any()
    clip = manyview.create("loss", "divergence_clip", base=base, kappa=kappa)
    value = clip(s, targets=t)
    assert value <= kappa
    torch.testing.assert_close(value, values.clamp(max=kappa).mean())
    value.backward()
    clipped = values > kappa
    assert (s.grad[clipped] == 0).all() and (s.grad[~clipped].abs().sum(-1) > 0).all()


def test_adaptive_cap_is_the_quantile_of_valid_tokens():
    v = randn(50, seed=19)
    for p in (0.0 + 1e-9, 0.3, 0.99, 1.0):
        torch.testing.assert_close(quantile(v, p), torch.quantile(v, p))
    s, t = randn(2, 5, 4, seed=20, scale=5), randn(2, 5, 4, seed=21, scale=5)
    mask = torch.ones(2, 5, dtype=torch.bool)
    mask[1, 3:] = False
    clip = manyview.create(
        "loss", "divergence_clip", quantile=0.5, base_kwargs={"temperature": 1.0}
    )
    values = clip.base.per_item(s, t)
    assert clip.cap(values, mask) == torch.quantile(values[mask], 0.5)


def test_clip_wraps_feature_and_token_contrast():
    s, t = randn(3, 4, 5, seed=22), randn(3, 4, 5, seed=23)
    clip = manyview.create("loss", "divergence_clip", base="feature", kappa=1e9)
    torch.testing.assert_close(clip(s, targets=t), manyview.create("loss", "feature")(s, targets=t))
    a, b = randn(3, 4, seed=24), randn(3, 4, seed=25)
    clip = manyview.create("loss", "divergence_clip", base="token_contrast", kappa=0.1)
    assert clip(s[..., 0], targets=a, negatives=b) <= 0.1


# ---------------------------------------------------------------------------- RKD


def _rotation(d: int, seed: int) -> torch.Tensor:
    q, _ = torch.linalg.qr(randn(d, d, seed=seed))
    return q


def test_rkd_invariant_to_scale_rotation_and_translation():
    s, t = randn(9, 6, seed=26), randn(9, 11, seed=27)
    loss = manyview.create("loss", "rkd")
    base = loss(s, targets=t)
    assert base > 0
    for s2, t2 in [
        (s * 7.5, t),
        (s, t * 0.01),
        (s @ _rotation(6, 28), t),
        (s, t @ _rotation(11, 29)),
        (s + 3.0, t - 1.0),
    ]:
        torch.testing.assert_close(loss(s2, targets=t2), base, rtol=1e-10, atol=1e-12)
    # identical structure: zero loss, even with different widths
    assert (
        loss(s, targets=torch.cat([s @ _rotation(6, 30), torch.zeros(9, 3, dtype=s.dtype)], 1) * 2)
        < 1e-20
    )


@pytest.mark.parametrize("weights", [(25.0, 50.0), (1.0, 0.0), (0.0, 1.0)])
def test_rkd_duplicate_points_have_finite_gradients(weights):
    # A duplicated row makes zero differences: the official code's F.normalize turns them
    # into 0 / eps and its gradient reaches ~1e10; here their unit vector is 0 and the
    # gradient stays of the order of the loss's (declared in docs/distillation.md).
    s = randn(5, 4, seed=31)
    s = torch.cat([s, s[:1], s[2:3]]).requires_grad_(True)
    t = randn(7, 3, seed=32)
    loss = manyview.create("loss", "rkd", distance_weight=weights[0], angle_weight=weights[1])
    value = loss(s, targets=t)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(s.grad).all()
    assert 0 < s.grad.abs().max() < 10 * max(weights)


# ---------------------------------------------------------------------------- CRD


def test_crd_memory_momentum_update_equals_the_formula():
    torch.manual_seed(0)
    loss = manyview.create("loss", "crd", embed_dim=8, num_samples=16, num_negatives=100).double()
    assert loss.num_negatives == 15  # capped at M - 1
    before = loss.memory.clone()
    torch.testing.assert_close(before.norm(dim=1), torch.ones(16, dtype=torch.float64))
    s, t = randn(4, 8, seed=33), randn(4, 8, seed=34)
    index = torch.tensor([3, 7, 0, 15])
    loss(s, targets=t, index=index)
    e_t = F.normalize(t, dim=1)
    want = before.clone()
    want[index] = F.normalize(0.5 * before[index] + 0.5 * e_t, dim=1)
    torch.testing.assert_close(loss.memory, want, rtol=1e-12, atol=1e-14)
    # eval mode reads the bank without writing it
    loss.eval()
    loss(s, targets=randn(4, 8, seed=35), index=index)
    torch.testing.assert_close(loss.memory, want, rtol=0, atol=0)
    # the bank travels in the state dict
    twin = manyview.create("loss", "crd", embed_dim=8, num_samples=16).double()
    twin.load_state_dict(loss.state_dict())
    assert torch.equal(twin.memory, loss.memory)


def test_crd_negatives_never_hit_the_positive():
    torch.manual_seed(1)
    loss = manyview.create("loss", "crd", embed_dim=4, num_samples=5, num_negatives=200)
    index = torch.tensor([0, 2, 4])
    neg = loss.sample_negatives(index)
    assert neg.shape == (3, 4)
    loss = manyview.create("loss", "crd", embed_dim=4, num_samples=5, num_negatives=4)
    neg = torch.cat([loss.sample_negatives(index) for _ in range(200)], dim=1)
    assert (neg != index[:, None]).all()
    for i in range(3):  # every other row is drawn
        assert set(neg[i].tolist()) == set(range(5)) - {index[i].item()}


def _fit(loss, student_dim, make_kwargs, steps=25, lr=0.5):
    """Train a linear student on 32 fixed random samples with plain gradient descent (no
    torch.optim: its first import costs seconds); return the first and last loss."""
    torch.manual_seed(0)
    x = torch.randn(32, 40, generator=_g(40))
    student = torch.nn.Linear(40, student_dim)
    params = [*student.parameters(), *loss.parameters()]
    values = []
    for _ in range(steps):
        value = loss(student(x), **make_kwargs())
        grads = torch.autograd.grad(value, params)
        with torch.no_grad():
            for p, g in zip(params, grads, strict=True):
                p -= lr * g
        values.append(value.item())
    return values[0], values[-1]


def test_crd_loss_decreases_on_32_random_samples():
    teacher = torch.randn(32, 12, generator=_g(41))
    loss = manyview.create(
        "loss", "crd", student_dim=5, teacher_dim=12, embed_dim=8, num_samples=32, num_negatives=16
    )
    index = torch.arange(32)
    first, last = _fit(loss, 5, lambda: {"targets": teacher, "index": index})
    assert last < 0.8 * first, (first, last)


@pytest.mark.parametrize(
    "name,kwargs,make",
    [
        ("kd", {}, lambda t: {"targets": t}),
        ("feature", {"student_dim": 5, "teacher_dim": 12}, lambda t: {"targets": t}),
        ("rkd", {}, lambda t: {"targets": t}),
        ("score_kd", {}, lambda t: {"targets": t}),
    ],
)
def test_losses_decrease_on_32_random_samples(name, kwargs, make):
    dim = 5 if name == "feature" else 12
    teacher = 3 * torch.randn(32, 12, generator=_g(42))
    loss = manyview.create("loss", name, **kwargs)
    first, last = _fit(loss, dim, lambda: make(teacher))
    assert last < 0.5 * first, (first, last)


# ---------------------------------------------------------------------------- DiSCo teachers


def test_score_kd_averages_teachers_over_their_scored_candidates():
    s = randn(2, 4, seed=43)
    t1, t2 = randn(2, 4, seed=44), randn(2, 4, seed=45)
    t1[0, 2] = float("nan")
    loss = manyview.create("loss", "score_kd")
    combined = (t1 + t2) / 2
    combined[0, 2] = t2[0, 2]  # scored by teacher 2 only
    torch.testing.assert_close(loss(s, targets=[t1, t2]), loss(s, targets=combined))
    torch.testing.assert_close(loss.check_targets([t1, t2], s), combined)


def test_score_kd_padding_is_ignored():
    s, t = randn(3, 6, seed=46), randn(3, 6, seed=47)
    mask = torch.ones(3, 6, dtype=torch.bool)
    mask[1, 4:] = False
    loss = manyview.create("loss", "score_kd")
    a = loss(s, targets=t, mask=mask)
    s2, t2 = s.clone(), t.clone()
    s2[1, 4:] = 1e3
    t2[1, 4:] = float("nan")
    assert torch.equal(a, loss(s2, targets=t2, mask=mask))
    short = torch.stack(
        [
            loss(s[i : i + 1, : (4 if i == 1 else 6)], targets=t[i : i + 1, : (4 if i == 1 else 6)])
            for i in range(3)
        ]
    )
    torch.testing.assert_close(a, short.mean())


# ---------------------------------------------------------------------------- gradients stay on the student


@pytest.mark.parametrize(
    "name", ["kd", "feature", "token_contrast", "rkd", "crd", "score_kd", "divergence_clip"]
)
def test_gradient_never_reaches_the_teacher(name):
    loss = manyview.create("loss", name)
    student, kwargs = loss.example_inputs(generator=_g(48), dtype=torch.float64)
    student.requires_grad_(True)
    teacher_param = torch.nn.Parameter(torch.ones((), dtype=torch.float64))
    with torch.no_grad():  # what a teacher does
        kwargs["targets"] = kwargs["targets"] * teacher_param
    loss.double()(student, **kwargs).backward()
    assert teacher_param.grad is None
    assert student.grad is not None and student.grad.abs().sum() > 0
