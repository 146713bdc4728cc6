"""The registry's contract checks on non-default settings of the distillation losses (the
registry-wide run in ``tests/core/test_contracts.py`` covers the defaults). ``manyview.create`` rather than ``testing.build``: build's own first
parameter is called ``kind`` and clashes with FeatureMatching's ``kind=``."""

from __future__ import annotations

import pytest

import manyview
from manyview.testing import LOSS_CHECKS, check_loss_small_temperature

SETTINGS = [
    ("kd", {"alpha": 0.5, "divergence": "jsd", "jsd_alpha": 0.2}),
    ("kd", {"divergence": "reverse", "temperature": 1.0}),
    ("feature", {"student_dim": 16, "teacher_dim": 24}),
    ("feature", {"kind": "cosine", "student_dim": 16, "adapter": True}),
    ("feature", {"kind": "smooth_l1"}),
    ("crd", {"student_dim": 16, "teacher_dim": 20, "embed_dim": 8, "num_samples": 32}),
    ("crd", {"embed_dim": 16, "num_samples": 20, "num_negatives": 3}),
    ("score_kd", {"student_temperature": 0.5, "teacher_temperature": 2.0}),
    ("divergence_clip", {"quantile": 0.9, "base_kwargs": {"temperature": 1.0}}),
    ("divergence_clip", {"base": "token_contrast", "kappa": 1.0}),
    ("divergence_clip", {"base": "feature", "base_kwargs": {"student_dim": 16, "teacher_dim": 4}}),
]


@pytest.mark.parametrize("check", list(LOSS_CHECKS))
@pytest.mark.parametrize(
    "name,kwargs", SETTINGS, ids=[f"{n}{i}" for i, (n, _) in enumerate(SETTINGS)]
)
def test_contract_on_other_settings(name, kwargs, check):
    LOSS_CHECKS[check](manyview.create("loss", name, **kwargs))


@pytest.mark.parametrize(
    "name,kwargs", SETTINGS, ids=[f"{n}{i}" for i, (n, _) in enumerate(SETTINGS)]
)
def test_no_overflow_on_large_inputs(name, kwargs):
    check_loss_small_temperature(manyview.create("loss", name, **kwargs), m=8)
