"""Every distillation loss against its naive float64 loop in ``reference_kd.py`` (rtol 1e-9)."""

from __future__ import annotations

import math

import pytest
import torch

import manyview
from manyview.distill import divergences as D

from . import reference_kd as R

RTOL = 1e-9
ATOL = 1e-12


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randn(*shape: int, seed: int, scale: float = 1.0) -> torch.Tensor:
    return scale * torch.randn(*shape, generator=_g(seed), dtype=torch.float64)


def close(value: torch.Tensor, expected: float) -> None:
    assert value.dtype == torch.float64 and value.dim() == 0
    assert math.isclose(value.item(), expected, rel_tol=RTOL, abs_tol=ATOL), (
        value.item(),
        expected,
    )


def token_mask(n: int, t: int, seed: int) -> torch.Tensor:
    mask = torch.rand(n, t, generator=_g(seed)) > 0.3
    mask[:, 0] = True
    mask[-1] = False  # an all-padding sequence counts as 0 (UniSD)
    return mask


@pytest.mark.parametrize("shape", [(3, 5), (2, 4, 7), (1, 2)])
@pytest.mark.parametrize(
    "kind,alpha",
    [("forward", 0.5), ("reverse", 0.5), ("jsd", 0.5), ("jsd", 0.2), ("jsd", 0.0), ("jsd", 1.0)],
)
def test_divergences_per_row(shape, kind, alpha):
    t, s = randn(*shape, seed=1, scale=3), randn(*shape, seed=2, scale=3)
    got = D.divergence(kind, t, s, alpha=alpha)
    assert got.shape == shape[:-1]
    flat_t, flat_s = t.reshape(-1, shape[-1]), s.reshape(-1, shape[-1])
    for k, value in enumerate(got.reshape(-1).tolist()):
        want = R.divergence_row(flat_t[k].tolist(), flat_s[k].tolist(), kind, alpha)
        assert math.isclose(value, want, rel_tol=RTOL, abs_tol=ATOL)


@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.0, 0.5])
@pytest.mark.parametrize("divergence", ["forward", "reverse", "jsd"])
def test_kd_rows(temperature, divergence):
    s, t = randn(6, 10, seed=3, scale=2), randn(6, 10, seed=4, scale=2)
    loss = manyview.create(
        "loss", "kd", temperature=temperature, divergence=divergence, jsd_alpha=0.3
    )
    close(
        loss(s, targets=t),
        R.kd(s, t, temperature=temperature, divergence=divergence, jsd_alpha=0.3),
    )


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_kd_rows_hard_labels_and_weights(temperature):
    s, t = randn(7, 5, seed=5, scale=2), randn(7, 5, seed=6, scale=2)
    y = torch.randint(0, 5, (7,), generator=_g(7))
    w = torch.rand(7, generator=_g(8), dtype=torch.float64)
    loss = manyview.create("loss", "kd", temperature=temperature, alpha=0.9)
    close(
        loss(s, targets=t, labels=y, weights=w),
        R.kd(s, t, temperature=temperature, alpha=0.9, labels=y, weights=w),
    )


@pytest.mark.parametrize("divergence", ["forward", "jsd"])
@pytest.mark.parametrize("weights", [None, "token", "sequence"])
def test_kd_tokens_masked(divergence, weights):
    n, T, C = 4, 6, 9
    s, t = randn(n, T, C, seed=9, scale=2), randn(n, T, C, seed=10, scale=2)
    mask = token_mask(n, T, 11)
    w = None
    if weights == "token":
        w = torch.rand(n, T, generator=_g(12), dtype=torch.float64)
    elif weights == "sequence":
        w = torch.rand(n, generator=_g(12), dtype=torch.float64)
    y = torch.randint(0, C, (n, T), generator=_g(13))
    y[~mask] = -100  # padding labels are ignored
    loss = manyview.create("loss", "kd", temperature=2.0, alpha=0.7, divergence=divergence)
    want = R.kd(
        s, t, temperature=2.0, alpha=0.7, divergence=divergence, labels=y, mask=mask, weights=w
    )
    close(loss(s, targets=t, labels=y, mask=mask, weights=w), want)


@pytest.mark.parametrize("kind", ["mse", "cosine", "smooth_l1"])
@pytest.mark.parametrize("tokens", [False, True])
def test_feature_matching(kind, tokens):
    shape = (3, 4, 6) if tokens else (5, 6)
    s, t = randn(*shape, seed=14, scale=1.5), randn(*shape, seed=15, scale=1.5)
    mask = token_mask(3, 4, 16) if tokens else None
    w = torch.rand(shape[:-1], generator=_g(17), dtype=torch.float64)
    loss = manyview.create("loss", "feature", kind=kind, beta=0.7)
    close(
        loss(s, targets=t, mask=mask, weights=w),
        R.feature(s, t, kind=kind, beta=0.7, mask=mask, weights=w),
    )


@pytest.mark.parametrize("kind", ["mse", "cosine", "smooth_l1"])
def test_feature_matching_with_adapter(kind):
    s, t = randn(5, 4, seed=18), randn(5, 7, seed=19)
    loss = manyview.create("loss", "feature", kind=kind, student_dim=4, teacher_dim=7).double()
    want = R.feature(s, t, kind=kind, weight=loss.adapter.weight, bias=loss.adapter.bias)
    close(loss(s, targets=t), want)


@pytest.mark.parametrize("margin", [0.5, 0.0, 2.0])
def test_token_contrast(margin):
    s, a, b = (-3 * torch.rand(4, 7, generator=_g(k), dtype=torch.float64) for k in (20, 21, 22))
    mask = token_mask(4, 7, 23)
    loss = manyview.create("loss", "token_contrast", margin=margin)
    close(
        loss(s, targets=a, negatives=b, mask=mask),
        R.token_contrast(s, a, b, margin=margin, mask=mask),
    )


@pytest.mark.parametrize("n,ds,dt", [(2, 3, 3), (5, 4, 9), (7, 8, 2)])
@pytest.mark.parametrize("weights", [(25.0, 50.0), (1.0, 0.0), (0.0, 1.0)])
def test_rkd(n, ds, dt, weights):
    s, t = randn(n, ds, seed=24, scale=0.3), randn(n, dt, seed=25, scale=3)
    loss = manyview.create("loss", "rkd", distance_weight=weights[0], angle_weight=weights[1])
    close(loss(s, targets=t), R.rkd(s, t, distance_weight=weights[0], angle_weight=weights[1]))


def test_rkd_flattens_feature_maps():
    s, t = randn(4, 2, 3, seed=26), randn(4, 5, seed=27)
    close(manyview.create("loss", "rkd")(s, targets=t), R.rkd(s, t))


@pytest.mark.parametrize("temperature", [0.07, 0.5])
def test_crd_in_batch(temperature):
    s, t = randn(6, 8, seed=28), randn(6, 8, seed=29)
    loss = manyview.create("loss", "crd", temperature=temperature)
    close(loss(s, targets=t), R.crd(s, t, temperature=temperature)[0])


def test_crd_heads_and_memory_bank():
    torch.manual_seed(0)
    loss = manyview.create(
        "loss", "crd", student_dim=5, teacher_dim=7, embed_dim=4, num_samples=20, num_negatives=6
    ).double()
    s, t = randn(3, 5, seed=30), randn(3, 7, seed=31)
    index = torch.tensor([4, 0, 19])
    contrast = torch.randint(0, 20, (3, 6), generator=_g(32))
    memory = loss.memory.clone()
    value = loss(s, targets=t, index=index, contrast_index=contrast)
    want, new_memory = R.crd(
        s,
        t,
        temperature=0.07,
        student_head=(loss.student_head.weight, loss.student_head.bias),
        teacher_head=(loss.teacher_head.weight, loss.teacher_head.bias),
        memory=memory,
        index=index,
        contrast_index=contrast,
    )
    close(value, want)
    torch.testing.assert_close(
        loss.memory, torch.tensor(new_memory, dtype=torch.float64), rtol=1e-12, atol=1e-14
    )


@pytest.mark.parametrize("temps", [(1.0, 1.0), (0.5, 2.0)])
def test_score_kd_one_teacher(temps):
    s, t = randn(4, 6, seed=33, scale=3), randn(4, 6, seed=34, scale=3)
    loss = manyview.create(
        "loss", "score_kd", student_temperature=temps[0], teacher_temperature=temps[1]
    )
    want = R.score_kd(s, t, student_temperature=temps[0], teacher_temperature=temps[1])
    close(loss(s, targets=t), want)


def test_score_kd_two_teachers_nan_gaps_and_padding():
    s = randn(3, 5, seed=35, scale=2)
    t1, t2 = randn(3, 5, seed=36, scale=2), randn(3, 5, seed=37, scale=2)
    t1[0, 1] = float("nan")  # only teacher 2 scored it
    t2[1, 3] = float("nan")  # only teacher 1 scored it
    t1[2, 4] = t2[2, 4] = float("nan")  # nobody scored it: padding
    mask = torch.ones(3, 5, dtype=torch.bool)
    mask[2, 4] = False
    mask[0, 3:] = False
    loss = manyview.create("loss", "score_kd")
    close(loss(s, targets=[t1, t2], mask=mask), R.score_kd(s, [t1, t2], mask=mask))


@pytest.mark.parametrize("q", [None, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("tokens", [False, True])
def test_divergence_clip(q, tokens):
    shape = (4, 5, 6) if tokens else (9, 6)
    s, t = randn(*shape, seed=38, scale=4), randn(*shape, seed=39, scale=4)
    mask = token_mask(4, 5, 40) if tokens else None
    kappa = 0.5
    loss = manyview.create(
        "loss",
        "divergence_clip",
        base_kwargs={"temperature": 1.0, "divergence": "jsd"},
        kappa=kappa,
        quantile=q,
    )
    want = R.clipped_kd(s, t, temperature=1.0, divergence="jsd", kappa=kappa, q=q, mask=mask)
    close(loss(s, targets=t, mask=mask), want)
