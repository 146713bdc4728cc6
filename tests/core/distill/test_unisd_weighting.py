"""UniSD's agreement weights and token reduction against the naive float64 loops of
``reference_unisd.py``: values and gradients, including the cases where the official code's
handling matters (≥ 95 % agreement, sequence weights on short sequences, all-masked
sequences)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import manyview
from manyview.distill.reduction import masked_mean
from manyview.teachers.ensemble import agreement_weights

from . import reference_kd as RK
from . import reference_unisd as R
from ._helpers import randn

RTOL = 1e-9
GRAD_TOL = 1e-7  # central differences with h = 1e-6 on float64


def _close(got: float, want: float, rtol: float = RTOL) -> None:
    assert math.isclose(got, want, rel_tol=rtol, abs_tol=1e-12), (got, want)


def _all_close(got: torch.Tensor, want: list, tol: float = RTOL) -> None:
    flat_got = got.detach().reshape(-1).tolist()
    flat_want = torch.tensor(want, dtype=torch.float64).reshape(-1).tolist()
    assert len(flat_got) == len(flat_want)
    for a, b in zip(flat_got, flat_want, strict=True):
        assert math.isclose(a, b, rel_tol=tol, abs_tol=tol), (a, b)


def _kd_reference(student, teacher, mask, weights) -> float:
    values = RK.kd_per_item(student, teacher, 1.0, "forward", 0.5)
    return R.reduce_tokens(values, mask, weights)


def _check_kd(student, teacher, mask, weights) -> torch.Tensor:
    """kd (T = 1) with these weights equals the reference in value and gradient."""
    loss = manyview.create("loss", "kd", temperature=1.0)
    s = student.clone().requires_grad_(True)
    value = loss(s, targets=teacher, mask=mask, weights=weights)
    _close(value.item(), _kd_reference(student, teacher, mask, weights))
    value.backward()
    want = R.numeric_grad(lambda x: _kd_reference(x, teacher, mask, weights), student)
    _all_close(s.grad, want, GRAD_TOL)
    return value.detach()


# ------------------------------------------------------------------ agreement weights


@pytest.mark.parametrize("gamma", [1.0, 2.5])
def test_token_agreement_weights_equal_the_reference(gamma):
    scores = randn(3, 4, 6, seed=1)
    mask = torch.rand(4, 6, generator=torch.Generator().manual_seed(2)) > 0.3
    got = agreement_weights(scores, gamma=gamma, mask=mask)
    _all_close(got, R.token_agreement(scores, mask, gamma=gamma))


def test_token_agreement_when_95_percent_of_the_tokens_agree():
    # 39 of 40 tokens agree exactly: the 0.95-quantile of the disagreement is 0, UniSD's
    # scale is its 1e-6 floor, and the one disagreeing token is capped at 10: 1/(1 + 10γ).
    gamma = 1.0
    scores = randn(1, 2, 20, seed=3).expand(3, 2, 20).clone()
    scores[1, 0, 7] += 0.5
    got = agreement_weights(scores, gamma=gamma)
    want = R.token_agreement(scores, gamma=gamma)
    _all_close(got, want)
    assert want[0][7] == pytest.approx(1 / (1 + 10 * gamma))
    assert got[0, 7].item() == pytest.approx(1 / 11)
    assert (got.reshape(-1)[torch.arange(40) != 7] == 1).all()


def test_token_agreement_with_nothing_valid_is_one():
    scores = randn(2, 2, 3, seed=4)
    got = agreement_weights(scores, mask=torch.zeros(2, 3, dtype=torch.bool))
    assert torch.equal(got, torch.ones(2, 3, dtype=torch.float64))


def test_sequence_agreement_weights_equal_the_reference():
    scores = randn(3, 4, 5, seed=5)
    mask = torch.rand(4, 5, generator=torch.Generator().manual_seed(6)) > 0.3
    got = agreement_weights(scores, gamma=2.0, level="sequence", mask=mask)
    want = R.sequence_agreement(scores, mask, gamma=2.0)
    _all_close(got, [[w] * 5 for w in want])


# ------------------------------------------------------------------ the reduction


def test_kd_with_the_weights_of_95_percent_agreement():
    student, teacher = randn(2, 20, 3, seed=7, scale=2), randn(2, 20, 3, seed=8, scale=2)
    scores = randn(1, 2, 20, seed=9).expand(3, 2, 20).clone()
    scores[2, 1, 4] -= 1.0
    weights = agreement_weights(scores)
    # the reference's own weights, so the loss checks the weighting as well
    want_w = R.token_agreement(scores)
    _all_close(weights, want_w)
    loss = _check_kd(student, teacher, None, weights)
    unweighted = manyview.create("loss", "kd", temperature=1.0)(student, targets=teacher)
    assert not math.isclose(loss.item(), unweighted.item(), rel_tol=1e-6)


def test_random_token_weights_and_mask_value_and_gradient():
    student, teacher = randn(3, 4, 3, seed=10, scale=2), randn(3, 4, 3, seed=11, scale=2)
    mask = torch.tensor([[1, 1, 0, 1], [1, 0, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    weights = torch.rand(3, 4, generator=torch.Generator().manual_seed(12), dtype=torch.float64)
    _check_kd(student, teacher, mask, weights)


def test_sequence_weights_do_not_cancel_on_short_sequences():
    # Σ_t m w = 2 * 0.1 < 1: UniSD's clamp(min=1) keeps the weight; the old Σ m w
    # denominator cancelled it and gave the unweighted loss.
    student, teacher = randn(3, 4, 3, seed=13, scale=2), randn(3, 4, 3, seed=14, scale=2)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 1, 0]], dtype=torch.bool)
    seq = torch.tensor([0.1, 1.0, 0.3], dtype=torch.float64)
    token = seq[:, None].expand(3, 4)
    weighted = _check_kd(student, teacher, mask, token)
    unweighted = manyview.create("loss", "kd", temperature=1.0)(student, targets=teacher, mask=mask)
    assert weighted.item() < unweighted.item() - 1e-3
    # (N,) weights weight the mean over the sequences instead (the reference's Σ u L / Σ u)
    per_sequence = _check_kd(student, teacher, mask, seq)
    assert not math.isclose(per_sequence.item(), weighted.item(), rel_tol=1e-6)


def test_per_sequence_weights_with_an_all_masked_sequence():
    student, teacher = randn(3, 3, 3, seed=22, scale=2), randn(3, 3, 3, seed=23, scale=2)
    mask = torch.tensor([[1, 1, 0], [0, 0, 0], [1, 1, 1]], dtype=torch.bool)
    _check_kd(student, teacher, mask, torch.tensor([0.5, 2.0, 1.0], dtype=torch.float64))


def test_sequence_weights_from_an_ensemble_teacher_act():
    x = randn(3, 2, 4, seed=15)
    mask = torch.tensor([[1, 1], [1, 0], [1, 1]], dtype=torch.bool)
    nets = []
    for seed in (16, 17):
        net = nn.Linear(4, 3).double()
        with torch.no_grad():
            net.weight.copy_(randn(3, 4, seed=seed, scale=2))
            net.bias.copy_(randn(3, seed=seed + 10))
        nets.append(net.requires_grad_(False))
    ensemble = manyview.create("teacher", "ensemble", teachers=nets, level="sequence", gamma=3.0)
    targets, weights = ensemble.forward_with_weights(x, mask=mask)
    outs = [n(x) for n in nets]
    scores = [[[sum(tok) / len(tok) for tok in seq] for seq in R.as_lists(o)] for o in outs]
    want_w = R.sequence_agreement(scores, mask, gamma=3.0)
    _all_close(weights, [[w] * 2 for w in want_w])
    assert min(want_w) < 0.5  # short sequences, strong disagreement: the weights bite
    student = randn(3, 2, 3, seed=18, scale=2)
    weighted = _check_kd(student, targets, mask, weights)
    unweighted = manyview.create("loss", "kd", temperature=1.0)(student, targets=targets, mask=mask)
    assert not math.isclose(weighted.item(), unweighted.item(), rel_tol=1e-6)


def test_all_masked_sequences_count_as_zero():
    student, teacher = randn(3, 4, 3, seed=19, scale=2), randn(3, 4, 3, seed=20, scale=2)
    mask = torch.tensor([[1, 1, 0, 1], [0, 0, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    value = _check_kd(student, teacher, mask, None)
    kd = manyview.create("loss", "kd", temperature=1.0)
    kept = torch.tensor([0, 2])
    over_two = kd(student[kept], targets=teacher[kept], mask=mask[kept])
    _close(value.item(), over_two.item() * 2 / 3)


def test_masked_mean_gradient_is_the_reference_weights():
    values = randn(3, 5, seed=21).requires_grad_(True)
    mask = torch.tensor([[1, 1, 0, 0, 0], [0] * 5, [1] * 5], dtype=torch.bool)
    weights = torch.tensor([[0.2, 0.3, 1, 1, 1], [1] * 5, [2.0] * 5], dtype=torch.float64)
    out = masked_mean(values, mask, weights)
    _close(out.item(), R.reduce_tokens(values, mask, weights))
    out.backward()
    want = R.numeric_grad(lambda v: R.reduce_tokens(v, mask, weights), values)
    _all_close(values.grad, want, GRAD_TOL)
