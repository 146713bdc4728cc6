"""A loss is found by its class or paper name too: case-insensitive matching, a few aliases,
and a suggestion when the name is still unknown."""

from __future__ import annotations

import pytest

import manyview
from manyview.registry import fold_name, make_entry


@pytest.mark.parametrize(
    ("given", "name"),
    [
        ("InfoNCE", "infonce"),
        ("MV_DHEL", "mv_dhel"),
        ("MVInfoNCE", "mv_infonce"),
        ("nt_xent", "infonce"),
        ("NTXentLoss", "infonce"),
        ("ntxent", "infonce"),
        ("simclr", "infonce"),
        ("SupConLoss", "supcon"),
        ("SigLIPLoss", "siglip"),
        ("PolyViewContrastive", "pvc"),
        ("DINOLoss", "dino"),
        ("manyview:InfoNCE", "infonce"),
    ],
)
def test_class_and_paper_names_find_the_loss(given, name):
    assert manyview.entry("loss", given).name == name


def test_a_loss_built_by_its_class_name_is_that_loss():
    assert type(manyview.create("loss", "InfoNCE")).__name__ == "InfoNCE"


def test_a_still_unknown_name_gets_a_suggestion():
    with pytest.raises(manyview.UnknownNameError, match="did you mean 'infonce'"):
        manyview.entry("loss", "InfoNSE")


def test_aliases_are_listed_and_checked():
    assert "nt_xent" in manyview.entry("loss", "infonce").describe()["aliases"]
    with pytest.raises(ValueError, match="aliases"):
        make_entry("loss", "x", "a.b:C", "p", aliases="nt_xent")


def test_fold_name():
    assert fold_name("MV_DHEL") == fold_name("mv-dhel") == "mvdhel"
    assert fold_name("SupConLoss") == "supcon"
    assert fold_name("loss") == "loss"
