"""Self-checks of the naive references in ``reference.py``.

The references are checked against short vectorised restatements written here (softmax cross
entropy, logsigmoid, pdist, svdvals) and against the identities between the losses in
``docs/losses.md``. These tests do not touch the library, so they guard the references
themselves.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from . import reference as R
from ._helpers import raw_views, unit

CASES = [
    (2, 2, 3, 0.1),
    (5, 2, 8, 0.05),
    (6, 3, 4, 0.5),
    (4, 4, 6, 0.1),
]
M2_CASES = [(2, 2, 3, 0.1), (5, 2, 8, 0.05), (9, 2, 16, 0.5)]


def _z(n: int, m: int, d: int, seed: int = 0) -> torch.Tensor:
    return unit(raw_views(n, m, d, seed))


def _close(a: float, b: float, rtol: float = 1e-11) -> None:
    assert math.isclose(a, b, rel_tol=rtol, abs_tol=1e-12), (a, b)


def _flat_gram(z: torch.Tensor) -> torch.Tensor:
    """(MN, MN) Gram matrix of the view-major flattening [view 0 of all; view 1 of all; ...]."""
    flat = z.transpose(0, 1).reshape(-1, z.shape[-1])
    return flat @ flat.T


def test_lse_edge_cases() -> None:
    assert R.lse([]) == -math.inf
    assert R.lse([-math.inf, -math.inf]) == -math.inf
    _close(R.lse([0.0, -math.inf]), 0.0)
    _close(R.lse([1000.0, 1000.0]), 1000.0 + math.log(2.0))
    _close(R.lse([-1000.0]), -1000.0)


@pytest.mark.parametrize(("n", "m", "d", "tau"), CASES)
def test_infonce_matches_cross_entropy(n: int, m: int, d: int, tau: float) -> None:
    z = _z(n, m, d)
    logits = _flat_gram(z) / tau
    eye = torch.eye(m * n, dtype=torch.bool)
    log_prob = logits.masked_fill(eye, -math.inf).log_softmax(dim=1).masked_fill(eye, 0.0)
    inst = torch.arange(m * n) % n
    positive = (inst[:, None] == inst[None, :]) & ~eye
    assert bool((positive.sum(1) == m - 1).all())
    expected = -(log_prob * positive).sum(1) / (m - 1)
    _close(R.infonce(z, tau), expected.mean().item())
    if m == 2:
        # SimCLR NT-Xent: softmax cross entropy over c != a with the other view as the target.
        target = (torch.arange(2 * n) + n) % (2 * n)
        ce = F.cross_entropy(logits.masked_fill(eye, -math.inf), target)
        _close(R.infonce(z, tau), ce.item())


@pytest.mark.parametrize(("n", "m", "d", "tau"), M2_CASES)
def test_clip_and_siglip_match_vectorised(n: int, m: int, d: int, tau: float) -> None:
    z = _z(n, m, d, seed=1)
    scale = 1.0 / tau
    logits = scale * z[:, 0] @ z[:, 1].T
    labels = torch.arange(n)
    ce = 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))
    _close(R.clip(z, scale), ce.item())
    for s, b in [(10.0, -10.0), (3.0, 0.5)]:
        sig_logits = s * z[:, 0] @ z[:, 1].T + b
        signs = 2 * torch.eye(n, dtype=torch.float64) - 1
        expected = -F.logsigmoid(signs * sig_logits).sum() / n
        _close(R.siglip(z, s, b), expected.item())


@pytest.mark.parametrize(("n", "m", "d", "tau"), M2_CASES)
def test_two_view_identities(n: int, m: int, d: int, tau: float) -> None:
    z = _z(n, m, d, seed=2)
    nt_xent = R.infonce(z, tau)
    _close(R.pwe(z, tau), nt_xent)
    _close(R.mv_dhel(z, tau), R.dhel(z, tau))
    # PVC at M=2: the denominator is the positive plus every other instance in both views,
    # i.e. exactly SimCLR's; geometric and arithmetic coincide with a single target view.
    _close(R.pvc(z, tau, "geometric"), nt_xent)
    _close(R.pvc(z, tau, "arithmetic"), nt_xent)
    _close(R.supcon(z, tau), nt_xent)
    # MV-InfoNCE at M=2: −s/τ + log(½(D¹ + D²)), D^m the SimCLR partition function of (m, i).
    logits = _flat_gram(z) / tau
    eye = torch.eye(2 * n, dtype=torch.bool)
    log_d = torch.logsumexp(logits.masked_fill(eye, -math.inf), dim=1)
    positive = (z[:, 0] * z[:, 1]).sum(-1) / tau
    mv = -positive + torch.logaddexp(log_d[:n], log_d[n:]) - math.log(2.0)
    _close(R.mv_infonce(z, tau), mv.mean().item())
    assert nt_xent <= R.mv_infonce(z, tau) + 1e-12


@pytest.mark.parametrize(("n", "m", "d", "tau"), CASES)
def test_supcon_identities(n: int, m: int, d: int, tau: float) -> None:
    z = _z(n, m, d, seed=3)
    nt = R.infonce(z, tau)
    _close(R.supcon(z, tau), nt)
    _close(R.supcon(z, tau, labels=torch.arange(n)), nt)
    _close(R.supcon(z, tau, mask=torch.eye(n, dtype=torch.bool)), nt)
    _close(R.supcon(z, tau, base_temperature=0.07), nt * tau / 0.07)
    labels = torch.arange(n) % 2
    assert R.supcon(z, tau, labels=labels, variant="in") <= R.supcon(z, tau, labels=labels) + 1e-12
    # A mask with no positives anywhere: every anchor contributes 0.
    assert R.supcon(z, tau, mask=torch.zeros(n, n, dtype=torch.bool)) == 0.0


@pytest.mark.parametrize(("n", "m", "d", "tau"), CASES)
def test_dcl_matches_vectorised(n: int, m: int, d: int, tau: float) -> None:
    z = _z(n, m, d, seed=4)
    logits = _flat_gram(z) / tau
    inst = torch.arange(m * n) % n
    same = inst[:, None] == inst[None, :]
    eye = torch.eye(m * n, dtype=torch.bool)
    negatives = torch.logsumexp(logits.masked_fill(same, -math.inf), dim=1)
    positives = (logits * (same & ~eye)).sum(1) / (m - 1)
    _close(R.dcl(z, tau), (negatives - positives).mean().item())
    # Equal positive similarities make every vMF weight exactly 1: DCLW == DCL.
    tied = z[:, :1].expand(n, m, d).clone()
    _close(R.dcl(tied, tau, weighted=True), R.dcl(tied, tau))


def test_dcl_weights_two_view_form() -> None:
    z = _z(6, 2, 5, seed=5)
    sims = (z[:, 0] * z[:, 1]).sum(-1)
    expected = 2 - 6 * torch.softmax(sims / 0.5, dim=0)
    weights = R.dcl_weights(z, 0.5)
    for i in range(6):
        _close(weights[i][0][1], expected[i].item())
        _close(weights[i][1][0], expected[i].item())
    _close(math.fsum(weights[i][0][1] for i in range(6)), 6.0)  # mean weight is 1


def test_metrics_match_vectorised() -> None:
    raw = raw_views(7, 3, 5, seed=6)
    expected_align = torch.stack(
        [
            (raw[:, a] - raw[:, b]).norm(dim=-1).pow(3).mean()
            for a in range(3)
            for b in range(a + 1, 3)
        ]
    ).mean()
    _close(R.alignment(raw, alpha=3.0), expected_align.item())
    z = unit(raw)
    # On the sphere ‖x − y‖² = 2 − 2<x, y>.
    sq = torch.stack(
        [2 - 2 * (z[:, a] * z[:, b]).sum(-1) for a in range(3) for b in range(a + 1, 3)]
    )
    _close(R.alignment(z), sq.mean().item())
    per_view = [torch.pdist(raw[:, v]).pow(2).mul(-2.0).exp().mean().log() for v in range(3)]
    _close(R.uniformity(raw), torch.stack(per_view).mean().item())


def test_effective_rank() -> None:
    _close(R.effective_rank(torch.eye(5, 7, dtype=torch.float64) * 3.0), 5.0)
    x = raw_views(10, 1, 6, seed=7)[:, 0]
    sigma = torch.linalg.svdvals(x)
    p = sigma / sigma.sum()
    _close(R.effective_rank(x), torch.exp(-(p * p.log()).sum()).item())
    low = raw_views(10, 1, 3, seed=8)[:, 0] @ raw_views(3, 1, 8, seed=9)[:, 0]
    assert 1.0 <= R.effective_rank(low) <= 3.0 + 1e-9
