"""A loss call refuses a keyword it does not take, instead of swallowing it."""

from __future__ import annotations

import pytest
import torch

import manyview
from manyview.losses import UnexpectedInputError
from manyview.losses.keywords import call_keywords
from manyview.testing import build


def _z(n=6, m=2, d=8):
    return torch.randn(n, m, d, generator=torch.Generator().manual_seed(0))


def test_a_typo_of_labels_is_refused_with_a_suggestion():
    """``supcon(z, label=y)`` used to compute the unsupervised loss silently."""
    loss = manyview.create("loss", "supcon")
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    with pytest.raises(UnexpectedInputError, match=r"'label'; did you mean 'labels'\?"):
        loss(_z(), label=y)
    assert torch.isfinite(loss(_z(), labels=y))


def test_labels_to_an_unsupervised_loss_are_refused():
    loss = manyview.create("loss", "infonce")
    with pytest.raises(UnexpectedInputError, match=r"InfoNCE does not use labels="):
        loss(_z(), labels=torch.arange(6))


def test_a_recipe_input_given_as_none_is_accepted():
    loss = manyview.create("loss", "infonce")
    assert torch.isfinite(loss(_z(), labels=None, index=None))


def test_a_constructor_option_given_to_the_call_is_named_as_one():
    loss = manyview.create("loss", "infonce")
    with pytest.raises(UnexpectedInputError, match=r"'temperature' is an option of the loss"):
        loss(_z(), temperature=0.1)


def test_a_wrapping_loss_takes_what_its_base_takes():
    pwe = manyview.create("loss", "pwe", base="supcon")
    assert {"labels", "mask"} <= call_keywords(pwe)
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    assert torch.isfinite(pwe(_z(m=3), labels=y))
    with pytest.raises(UnexpectedInputError, match="did you mean 'labels'"):
        pwe(_z(m=3), lables=y)
    plain = manyview.create("loss", "pwe")
    with pytest.raises(UnexpectedInputError, match="does not use labels="):
        plain(_z(m=3), labels=y)


def test_a_distillation_loss_refuses_an_unknown_keyword():
    kd = manyview.create("loss", "kd")
    s, t = torch.randn(4, 5), torch.randn(4, 5)
    with pytest.raises(UnexpectedInputError, match=r"'weight'; did you mean 'weights'\?"):
        kd(s, targets=t, weight=torch.ones(4))
    dino = build("loss", "dino")
    student, kwargs = dino.example_inputs(4, None, 8)
    with pytest.raises(UnexpectedInputError, match="DINOLoss does not use labels="):
        dino(student, **kwargs, labels=torch.arange(4))


def test_an_explicit_signature_keyword_is_taken():
    """Keywords of a loss's own methods (SupCon's mask, DINO's step) are taken."""
    assert "mask" in call_keywords(manyview.create("loss", "supcon"))
    assert "step" in call_keywords(build("loss", "dino"))
    assert "negatives" in call_keywords(build("loss", "token_contrast"))
