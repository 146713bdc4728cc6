"""SLA: joint labels, aggregation, the loss against its loop, the stop-gradient of the
self-distillation term, and a tiny CNN that overfits with SLA+SD."""

from __future__ import annotations

import math

import pytest
import torch

import manyview
from manyview.distill.sla import SLALoss, aggregate, decode_joint_labels, joint_labels, single

from . import reference_sd as R
from ._helpers import RTOL, randn


def _rotations(x: torch.Tensor) -> torch.Tensor:
    """The 4 rotated copies of each image, contiguous per sample."""
    return torch.stack([torch.rot90(x, k, (2, 3)) for k in range(4)], dim=1).flatten(0, 1)


# --- joint labels ---------------------------------------------------------------------------


def test_joint_labels_decode_back():
    y = torch.tensor([3, 0, 2])
    joint = joint_labels(y, 4)
    assert joint.tolist() == [12, 13, 14, 15, 0, 1, 2, 3, 8, 9, 10, 11]
    cls, j = decode_joint_labels(joint, 4)
    assert torch.equal(cls, y.repeat_interleave(4))
    assert torch.equal(j, torch.arange(4).repeat(3))
    with pytest.raises(ValueError, match="integer"):
        joint_labels(y.float(), 4)


# --- aggregation and the loss ---------------------------------------------------------------


def test_aggregate_and_single_are_the_manual_slot_reads():
    n, c, m = 3, 5, 4
    z = randn(n * m, c * m, seed=1)
    expected = R.sla_aggregate(z, m)
    assert torch.allclose(aggregate(z, m), torch.tensor(expected, dtype=torch.float64), rtol=1e-13)
    agg = sum(z[j::m, j::m] for j in range(m)) / m  # the official code's slicing
    assert torch.allclose(aggregate(z, m), agg, rtol=1e-13)
    assert torch.equal(single(z, m), z[::m, ::m])
    with pytest.raises(ValueError, match="multiples of M"):
        aggregate(z[:, :-1], m)


@pytest.mark.parametrize("with_head", [False, True])
@pytest.mark.parametrize(("m", "temperature"), [(4, 1.0), (2, 3.0), (1, 0.5)])
def test_loss_matches_naive_loop(with_head, m, temperature):
    n, c = 5, 3
    z = randn(n * m, c * m, seed=2, scale=2.0)
    y = torch.tensor([0, 2, 1, 1, 0])
    head = randn(n, c, seed=3, scale=2.0) if with_head else None
    loss = SLALoss(m, temperature=temperature)
    value = loss(z, labels=y, head_logits=head)
    expected = R.sla(z, y, m, head, temperature)
    assert value.dtype == torch.float64
    assert math.isclose(value.item(), expected, rel_tol=RTOL), (value.item(), expected)
    if with_head and m > 1:  # the whole transformed batch's head rows: copy 0 is used
        full = randn(n * m, c, seed=4)
        full[::m] = head
        assert torch.equal(loss(z, labels=y, head_logits=full), value)


def test_flags_large_loss_and_aggregate_ce():
    z, y = randn(12, 12, seed=5), torch.tensor([0, 1, 2])
    base = SLALoss()(z, labels=y)
    assert torch.allclose(SLALoss(large_loss=True)(z, labels=y), 4 * base)
    agg_ce = torch.nn.functional.cross_entropy(aggregate(z, 4), y)
    assert torch.allclose(SLALoss(aggregate_ce=True)(z, labels=y), base + agg_ce)


def test_kl_term_sends_no_gradient_into_the_joint_head():
    z = randn(8, 12, seed=6).requires_grad_(True)
    head = randn(2, 3, seed=7).requires_grad_(True)
    y = torch.tensor([1, 2])
    with_head = SLALoss()(z, labels=y, head_logits=head)
    (g_with,) = torch.autograd.grad(with_head, z)
    (g_without,) = torch.autograd.grad(SLALoss()(z, labels=y), z)
    assert torch.equal(g_with, g_without)  # CE(head) and KL only reach the head
    (g_head,) = torch.autograd.grad(SLALoss()(z, labels=y, head_logits=head), head)
    assert g_head.abs().sum() > 0


def test_bad_inputs():
    loss = SLALoss()
    z, y = torch.randn(8, 12), torch.tensor([0, 2])
    for args, kwargs, match in [
        ((z,), {}, "labels"),
        ((z,), {"labels": y, "targets": torch.randn(8, 12)}, "no targets"),
        ((z[:7],), {"labels": y}, "multiples of M"),
        ((z[:, :10],), {"labels": y}, "multiples of M"),
        ((z,), {"labels": torch.tensor([0, 3])}, r"\[0, 3\)"),
        ((z,), {"labels": y[:1]}, "shape"),
        ((z,), {"labels": y, "head_logits": torch.randn(2, 4)}, "head_logits"),
        ((z,), {"labels": y, "head_logits": torch.full((2, 3), float("nan"))}, "NaN"),
        ((torch.randn(2, 4, 12),), {"labels": y}, "dimensions"),
    ]:
        with pytest.raises(ValueError, match=match):
            loss(*args, **kwargs)
    bad = z.clone()
    bad[0, 0] = float("inf")
    with pytest.raises(ValueError, match="NaN or inf"):
        loss(bad, labels=y)
    for kwargs, match in [
        ({"temperature": 0.0}, "temperature"),
        ({"num_transforms": 0}, "num_transforms"),
    ]:
        with pytest.raises(ValueError, match=match):
            SLALoss(**kwargs)


def test_state_dict_is_empty_and_the_registration_works():
    loss = manyview.create("loss", "sla", num_transforms=2, temperature=2.0)
    assert loss.state_dict() == {} and loss.num_transforms == 2


# --- a tiny CNN -----------------------------------------------------------------------------


class TinyNet(torch.nn.Module):
    def __init__(self, classes: int, m: int) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(3, 16, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(16, 16, 3, padding=1, stride=2),
            torch.nn.ReLU(),
            torch.nn.Flatten(),
        )
        self.joint = torch.nn.Linear(16 * 4 * 4, classes * m)
        self.head = torch.nn.Linear(16 * 4 * 4, classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        return self.joint(h), self.head(h)


def test_tiny_cnn_overfits_64_images_with_sla_sd(one_thread):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(64, 3, 8, 8, generator=gen)
    y = torch.randint(0, 4, (64,), generator=gen)
    loss = SLALoss(4)
    net = TinyNet(4, 4)
    opt = R.Adam(net.parameters(), lr=3e-3)
    batch = _rotations(x)  # what manyview-vision's rotation view makes
    first = None
    for _ in range(150):
        joint, head = net(batch)
        value = loss(joint, labels=y, head_logits=head)
        first = value.item() if first is None else first
        opt.zero_grad()
        value.backward()
        opt.step()
    with torch.no_grad():
        joint, head = net(batch)
    assert value.item() < 0.1 * first
    assert (joint.argmax(1) == joint_labels(y, 4)).float().mean() == 1.0
    assert (aggregate(joint, 4).argmax(1) == y).all()
    assert (single(joint, 4).argmax(1) == y).all()
    assert (head[::4].argmax(1) == y).all()
