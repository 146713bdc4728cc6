"""Flags and behaviour beyond the formulas: learnable scales, anchors, PWE bases, views,
metrics' bounds."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import manyview
from manyview.metrics import alignment, effective_rank, uniformity


def test_clip_learnable_scale_is_open_clip_init_and_clamped():
    loss = manyview.create("loss", "clip", learnable=True)
    assert math.isclose(loss.logit_scale.item(), math.log(1 / 0.07), rel_tol=1e-6)
    assert loss.logit_scale.requires_grad
    with torch.no_grad():
        loss.logit_scale.fill_(10.0)  # scale e^10 > 100
    loss(torch.randn(4, 2, 8))
    assert math.isclose(loss.logit_scale.item(), math.log(100.0), rel_tol=1e-6)
    with torch.no_grad():
        loss.logit_scale.fill_(-3.0)
    loss(torch.randn(4, 2, 8))
    assert loss.logit_scale.item() == 0.0
    assert math.isclose(loss.temperature, 1.0)


def test_clip_fixed_scale_has_no_parameters():
    loss = manyview.create("loss", "clip", temperature=0.05)
    assert list(loss.parameters()) == []
    assert math.isclose(loss.temperature, 0.05)


def test_siglip_parameters_train():
    loss = manyview.create("loss", "siglip")
    assert {n for n, _ in loss.named_parameters()} == {"logit_scale", "logit_bias"}
    assert math.isclose(loss.logit_scale.exp().item(), 10.0, rel_tol=1e-6)
    loss(torch.randn(6, 2, 8)).backward()
    assert loss.logit_bias.grad is not None and loss.logit_scale.grad is not None


def test_supcon_base_temperature_rescales():
    z = torch.randn(8, 2, 16, dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    plain = manyview.create("loss", "supcon", temperature=0.1)(z, labels=labels)
    scaled = manyview.create("loss", "supcon", temperature=0.1, base_temperature=0.07)(
        z, labels=labels
    )
    assert torch.allclose(scaled, plain * (0.1 / 0.07))


def test_supcon_anchors_one_uses_view_zero_rows():
    z = torch.randn(6, 3, 8, dtype=torch.float64)
    labels = torch.tensor([0, 1, 0, 1, 2, 2])
    one = manyview.create("loss", "supcon", anchors="one")(z, labels=labels)
    # rebuilt by hand from the per-anchor form: all anchors, then keep view 0's rows
    flat = F.normalize(z, dim=-1).transpose(0, 1).reshape(18, 8)
    logits = flat @ flat.T / 0.1
    eye = torch.eye(18, dtype=torch.bool)
    lse = logits.masked_fill(eye, -math.inf).logsumexp(1)
    lab = labels.repeat(3)
    pos = (lab[:, None] == lab[None, :]) & ~eye
    per = lse - torch.where(pos, logits, 0).sum(1) / pos.sum(1)
    assert torch.allclose(one, per[:6].mean())


def test_supcon_in_is_at_most_out():
    z = torch.randn(10, 2, 8)
    labels = torch.randint(0, 3, (10,))
    lin = manyview.create("loss", "supcon", variant="in")(z, labels=labels)
    lout = manyview.create("loss", "supcon", variant="out")(z, labels=labels)
    assert lin <= lout + 1e-6  # Jensen


def test_dhel_include_augs_false_keeps_only_anchor_view_uniformity():
    z = F.normalize(torch.randn(7, 2, 8, dtype=torch.float64), dim=-1)
    full = manyview.create("loss", "dhel", temperature=0.3)(z)
    anchor = manyview.create("loss", "dhel", temperature=0.3, include_augs=False)(z)
    eye = torch.eye(7, dtype=torch.bool)
    second = (z[:, 1] @ z[:, 1].T / 0.3).masked_fill(eye, -math.inf).logsumexp(1).mean()
    assert torch.allclose(full - anchor, second)


def test_pwe_with_other_bases():
    z = torch.randn(6, 3, 8, dtype=torch.float64)
    dhel = manyview.create("loss", "dhel", temperature=0.2)
    pairs = [(0, 1), (0, 2), (1, 2)]
    expected = torch.stack([dhel(z[:, list(p)]) for p in pairs]).mean()
    by_name = manyview.create("loss", "pwe", base="dhel", temperature=0.2)(z)
    by_module = manyview.create("loss", "pwe", base=dhel)(z)
    assert torch.allclose(by_name, expected) and torch.allclose(by_module, expected)
    assert manyview.create("loss", "pwe", base="dhel", temperature=0.2).temperature == 0.2


def test_pwe_passes_labels_to_the_base():
    z = torch.randn(6, 3, 8, dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    supcon = manyview.create("loss", "supcon")
    value = manyview.create("loss", "pwe", base="supcon")(z, labels=labels)
    expected = torch.stack([supcon(z[:, p], labels=labels) for p in ([0, 1], [0, 2], [1, 2])])
    assert torch.allclose(value, expected.mean())


def test_pwe_rejects_kwargs_with_a_module():
    with pytest.raises(ValueError, match="base_kwargs"):
        manyview.create("loss", "pwe", base=manyview.create("loss", "infonce"), temperature=0.1)


def test_losses_fall_when_views_align():
    """Every instance-discrimination loss prefers aligned, spread-out views."""
    torch.manual_seed(0)
    base = torch.randn(16, 1, 32)
    aligned = base.expand(16, 3, 32) + 0.01 * torch.randn(16, 3, 32)
    shuffled = torch.randn(16, 3, 32)
    for name in ["infonce", "mv_infonce", "mv_dhel", "pvc", "dcl", "dclw", "pwe"]:
        loss = manyview.create("loss", name)
        assert loss(aligned) < loss(shuffled), name


def test_embedding_noise_properties():
    view = manyview.create("view", "embedding_noise", eps=0.3)
    x = torch.randn(32, 16)
    x[0, :4] = 0.0
    g = torch.Generator().manual_seed(0)
    y = view(x, generator=g)
    delta = y - x
    assert torch.allclose(delta[1:].norm(dim=1), torch.full((31,), 0.3), atol=1e-6)
    assert (delta * torch.sign(x) >= 0).all()  # same orthant as the embedding
    assert (delta[0, :4] == 0).all()  # sign 0 gets no noise
    assert torch.equal(y, view(x, generator=torch.Generator().manual_seed(0)))
    view.eval()
    assert torch.equal(view(x), x)
    assert not torch.equal(view(x, force=True), x)
    with pytest.raises(ValueError, match="float tensor"):
        view(torch.arange(4))
    with pytest.raises(ValueError, match="eps must be >= 0"):
        manyview.create("view", "embedding_noise", eps=-1)


def test_effective_rank_bounds():
    assert math.isclose(effective_rank(torch.eye(5), eps=0), 5.0, rel_tol=1e-6)
    rank_one = torch.randn(20, 1) @ torch.randn(1, 8)
    assert math.isclose(effective_rank(rank_one, eps=0), 1.0, rel_tol=1e-4)
    x = torch.randn(50, 8)
    r = effective_rank(x)
    assert 1.0 <= r <= 8.0
    assert effective_rank(x, on="cov_eig", eps=0) < effective_rank(x, eps=0)
    assert effective_rank(torch.zeros(4, 3)) == 1.0
    with pytest.raises(ValueError, match="one view at a time"):
        effective_rank(torch.randn(5, 2, 3))


def test_alignment_and_uniformity_directions():
    z = F.normalize(torch.randn(64, 1, 16), dim=-1)
    same = z.expand(64, 2, 16)
    assert alignment(same) == 0.0
    spread = F.normalize(torch.randn(256, 16), dim=-1)
    clumped = F.normalize(torch.randn(256, 16) * 0.1 + torch.ones(16), dim=-1)
    assert uniformity(spread) < uniformity(clumped)
    # stable at a large t, where exp(-t d^2) underflows in a naive form
    assert math.isfinite(uniformity(spread, t=500.0))
    with pytest.raises(ValueError, match="two views"):
        alignment(z)
    with pytest.raises(ValueError, match="NaN"):
        uniformity(torch.full((3, 2), float("nan")))
