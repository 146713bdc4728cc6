"""Bad input raises a ValueError that names the problem, for every loss."""

from __future__ import annotations

import pytest
import torch

import manyview
from manyview.testing import build

# the contrastive family (M views); distillation losses have their own tests
LOSSES = [
    n
    for n in manyview.available("loss")
    if getattr(manyview.entry("loss", n).load(), "takes", "views") == "views"
]


def _inputs(loss, n=6, m=None, d=8):
    return loss.example_inputs(n, m, d, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("name", LOSSES)
def test_too_few_views(name):
    loss = build("loss", name)
    views, kwargs = _inputs(loss, m=max(loss.min_views, 2))
    fewer = loss.min_views - 1
    with pytest.raises(ValueError, match=rf"at least {loss.min_views} view.*M = {fewer}"):
        loss(views[:, :fewer], **kwargs)


@pytest.mark.parametrize("name", ["clip", "siglip", "dhel"])
def test_too_many_views_for_two_view_losses(name):
    with pytest.raises(ValueError, match=r"exactly 2 views.*M = 3.*pwe"):
        build("loss", name)(torch.randn(4, 3, 8))


@pytest.mark.parametrize("name", LOSSES)
def test_batch_of_one(name):
    loss = build("loss", name)
    views, kwargs = _inputs(loss)
    kwargs = {k: v[:1] for k, v in kwargs.items()}
    with pytest.raises(ValueError, match=r"at least 2 instances, got N = 1"):
        loss(views[:1], **kwargs)


@pytest.mark.parametrize("name", LOSSES)
def test_mismatched_list(name):
    loss = build("loss", name)
    views, kwargs = _inputs(loss)
    parts = list(views.unbind(1))
    parts[0] = parts[0][:-1]
    with pytest.raises(ValueError, match=r"shapes differ"):
        loss(parts, **kwargs)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("name", LOSSES)
def test_non_finite_views(name, bad):
    loss = build("loss", name)
    views, kwargs = _inputs(loss)
    views[2, 0, 1] = bad
    with pytest.raises(ValueError, match=r"NaN or inf \(instances \[2\]"):
        loss(views, **kwargs)


@pytest.mark.parametrize("name", LOSSES)
def test_wrong_rank_and_type(name):
    loss = build("loss", name)
    views, kwargs = _inputs(loss)
    with pytest.raises(ValueError, match=r"pass a list"):
        loss(views[:, 0], **kwargs)
    with pytest.raises(ValueError, match=r"not ndarray|not list|tensor"):
        loss(views.numpy(), **kwargs)
    with pytest.raises(ValueError, match=r"floating point"):
        loss((views * 10).long(), **kwargs)
    with pytest.raises(ValueError, match=r"empty list"):
        loss([], **kwargs)


@pytest.mark.parametrize("name", ["supcon", "supremix"])
def test_labels_of_wrong_length(name):
    loss = build("loss", name)
    with pytest.raises(ValueError, match=r"labels must have shape \(6,\).*\(5,\)"):
        loss(torch.randn(6, 2, 8), labels=torch.arange(5))


def test_class_labels_must_be_integers():
    with pytest.raises(ValueError, match=r"integer tensor.*labels.long"):
        build("loss", "supcon")(torch.randn(6, 2, 8), labels=torch.rand(6))


def test_scalar_labels_must_be_finite():
    labels = torch.arange(6.0)
    labels[0] = float("nan")
    with pytest.raises(ValueError, match=r"labels contain NaN"):
        build("loss", "supremix")(torch.randn(6, 2, 8), labels=labels)


def test_supremix_needs_labels():
    with pytest.raises(ValueError, match=r"needs `labels=`"):
        build("loss", "supremix")(torch.randn(6, 2, 8))


def test_supcon_single_view_needs_labels():
    with pytest.raises(ValueError, match=r"one view needs labels"):
        build("loss", "supcon")(torch.randn(6, 1, 8))


def test_supcon_labels_and_mask_together():
    with pytest.raises(ValueError, match=r"labels or mask, not both"):
        build("loss", "supcon")(
            torch.randn(4, 2, 8), labels=torch.arange(4), mask=torch.eye(4, dtype=torch.bool)
        )


def test_supcon_mask_shape():
    with pytest.raises(ValueError, match=r"mask must be a tensor of shape \(4, 4\)"):
        build("loss", "supcon")(torch.randn(4, 2, 8), mask=torch.eye(3, dtype=torch.bool))


def test_isogclr_index_errors():
    loss = manyview.create("loss", "isogclr", num_samples=10)
    views = torch.randn(4, 2, 8)
    with pytest.raises(ValueError, match=r"needs `index=`"):
        loss(views)
    with pytest.raises(ValueError, match=r"out of range.*num_samples=10"):
        loss(views, index=torch.tensor([0, 1, 2, 10]))
    with pytest.raises(ValueError, match=r"out of range"):
        loss(views, index=torch.tensor([-1, 1, 2, 3]))
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        loss(views, index=torch.arange(3))
    with pytest.raises(ValueError, match=r"integer"):
        loss(views, index=torch.arange(4.0))
    with pytest.raises(ValueError, match=r"duplicates"):
        loss(views, index=torch.tensor([0, 1, 1, 2]))


@pytest.mark.parametrize(
    ("name", "kwargs", "match"),
    [
        ("infonce", {"temperature": 0}, "temperature must be a positive"),
        ("mv_dhel", {"temperature": -1.0}, "temperature must be a positive"),
        ("dclw", {"sigma": float("nan")}, "sigma must be a positive"),
        ("pvc", {"method": "harmonic"}, "'geometric' or 'arithmetic'"),
        ("supcon", {"variant": "both"}, "'out' or 'in'"),
        ("supremix", {"weighting": "l3"}, "'l1', 'l2' or 'none'"),
        ("isogclr", {"num_samples": 0}, "num_samples must be a positive int"),
        ("isogclr", {"num_samples": 10, "tau_init": 2.0}, "tau_min <= tau_init <= tau_max"),
    ],
)
def test_bad_constructor_arguments(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        manyview.create("loss", name, **kwargs)
