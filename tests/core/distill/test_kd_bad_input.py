"""Bad inputs and settings of kd, feature, token_contrast, rkd, crd, score_kd and
divergence_clip raise a ValueError that names the problem."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import manyview


def randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(
    "name,kwargs,match",
    [
        ("kd", {"temperature": 0.0}, "temperature"),
        ("kd", {"temperature": -1.0}, "temperature"),
        ("kd", {"temperature": float("inf")}, "temperature"),
        ("kd", {"alpha": 1.5}, "alpha"),
        ("kd", {"divergence": "js"}, "divergence"),
        ("kd", {"jsd_alpha": -0.1}, "jsd_alpha"),
        ("feature", {"kind": "l2"}, "kind"),
        ("feature", {"adapter": True}, "student_dim"),
        ("feature", {"student_dim": 4, "teacher_dim": 8, "adapter": False}, "adapter"),
        ("feature", {"student_dim": 0}, "student_dim"),
        ("feature", {"beta": 0.0}, "beta"),
        ("token_contrast", {"margin": -0.5}, "margin"),
        ("rkd", {"distance_weight": -1.0}, "distance_weight"),
        ("crd", {"temperature": 0.0}, "temperature"),
        ("crd", {"num_samples": 1}, "num_samples"),
        ("crd", {"momentum": 1.0}, "momentum"),
        ("crd", {"embed_dim": 0}, "embed_dim"),
        ("score_kd", {"student_temperature": 0.0}, "student_temperature"),
        ("score_kd", {"teacher_temperature": -2.0}, "teacher_temperature"),
        ("divergence_clip", {"kappa": 0.0}, "kappa"),
        ("divergence_clip", {"quantile": 0.0}, "quantile"),
        ("divergence_clip", {"quantile": 1.5}, "quantile"),
        ("divergence_clip", {"base": "rkd"}, "per_item"),
        ("divergence_clip", {"base_kwargs": {"alpha": 0.5}}, "alpha"),
        ("divergence_clip", {"base": nn.Identity()}, "per_item"),
    ],
)
def test_bad_settings(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        manyview.create("loss", name, **kwargs)


def test_divergence_clip_base_kwargs_need_a_named_base():
    base = manyview.create("loss", "kd")
    with pytest.raises(ValueError, match="base_kwargs"):
        manyview.create("loss", "divergence_clip", base=base, base_kwargs={"temperature": 1.0})


def test_kd_bad_inputs():
    kd = manyview.create("loss", "kd", alpha=0.9)
    s, t = randn(4, 5), randn(4, 5, seed=1)
    with pytest.raises(ValueError, match="labels"):
        kd(s, targets=t)  # alpha < 1 without labels
    with pytest.raises(ValueError, match="labels must be class indices"):
        kd(s, targets=t, labels=torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="integer"):
        kd(s, targets=t, labels=torch.zeros(4))
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        kd(s, targets=t, labels=torch.full((4,), 5))
    with pytest.raises(ValueError, match="same shape"):
        kd(s, targets=randn(4, 6))
    with pytest.raises(ValueError, match="dimensions"):
        kd(randn(2, 3, 4, 5), targets=randn(2, 3, 4, 5))
    kd = manyview.create("loss", "kd")
    with pytest.raises(ValueError, match="mask must have shape"):
        kd(s, targets=t, mask=torch.ones(4, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="weights must have shape"):
        kd(s, targets=t, weights=torch.ones(5))
    with pytest.raises(ValueError, match="non-negative"):
        kd(s, targets=t, weights=-torch.ones(4))
    with pytest.raises(ValueError, match="NaN or inf"):
        kd(s, targets=t, weights=torch.full((4,), float("nan")))


def test_feature_bad_inputs():
    loss = manyview.create("loss", "feature", student_dim=4, teacher_dim=6)
    with pytest.raises(ValueError, match="student features of size 4"):
        loss(randn(3, 5), targets=randn(3, 6))
    with pytest.raises(ValueError, match="teacher features of size 6"):
        loss(randn(3, 4), targets=randn(3, 7))
    with pytest.raises(ValueError, match="every dimension but the last"):
        loss(randn(3, 2, 4), targets=randn(3, 6))
    with pytest.raises(ValueError, match="same shape"):
        manyview.create("loss", "feature")(randn(3, 4), targets=randn(3, 6))


def test_token_contrast_bad_inputs():
    loss = manyview.create("loss", "token_contrast")
    s, a = randn(2, 5), randn(2, 5, seed=1)
    with pytest.raises(ValueError, match="negatives="):
        loss(s, targets=a)
    with pytest.raises(ValueError, match="student's shape"):
        loss(s, targets=a, negatives=randn(2, 4))
    with pytest.raises(ValueError, match="require grad"):
        loss(s, targets=a, negatives=randn(2, 5).requires_grad_(True))
    with pytest.raises(ValueError, match="NaN or inf"):
        loss(s, targets=a, negatives=torch.full((2, 5), float("nan")))
    with pytest.raises(ValueError, match="dimensions"):
        loss(randn(2, 5, 3), targets=randn(2, 5, 3), negatives=randn(2, 5, 3))


def test_rkd_bad_inputs():
    loss = manyview.create("loss", "rkd")
    with pytest.raises(ValueError, match="batch"):
        loss(randn(4, 3), targets=randn(5, 3))
    with pytest.raises(ValueError, match="at least 2"):
        loss(randn(1, 3), targets=randn(1, 3))


def test_crd_bad_inputs():
    loss = manyview.create("loss", "crd", embed_dim=4, num_samples=10)
    s, t = randn(3, 4), randn(3, 4, seed=1)
    with pytest.raises(ValueError, match="index="):
        loss(s, targets=t)
    with pytest.raises(ValueError, match="repeated"):
        loss(s, targets=t, index=torch.tensor([1, 1, 2]))
    with pytest.raises(ValueError, match="num_samples=10"):
        loss(s, targets=t, index=torch.tensor([1, 2, 10]))
    with pytest.raises(ValueError, match="integer"):
        loss(s, targets=t, index=torch.tensor([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="contrast_index"):
        loss(s, targets=t, index=torch.tensor([1, 2, 3]), contrast_index=torch.zeros(2, 4))
    with pytest.raises(ValueError, match="memory bank"):
        loss(randn(3, 6), targets=randn(3, 6), index=torch.tensor([1, 2, 3]))
    heads = manyview.create("loss", "crd", student_dim=4, teacher_dim=6)
    with pytest.raises(ValueError, match="teacher head expects features of size 6"):
        heads(s, targets=t)
    with pytest.raises(ValueError, match="student_dim and teacher_dim"):
        manyview.create("loss", "crd")(randn(3, 4), targets=randn(3, 5))


def test_score_kd_bad_inputs():
    loss = manyview.create("loss", "score_kd")
    s, t = randn(2, 4), randn(2, 4, seed=1)
    nan = t.clone()
    nan[0, 1] = float("nan")
    with pytest.raises(ValueError, match="no teacher scored"):
        loss(s, targets=nan)
    with pytest.raises(ValueError, match="no teacher scored"):
        loss(s, targets=[nan, nan.clone()])
    inf = t.clone()
    inf[1, 0] = float("inf")
    with pytest.raises(ValueError, match=r"targets\[1\] contain inf"):
        loss(s, targets=[t, inf])
    with pytest.raises(ValueError, match="shape"):
        loss(s, targets=[t, randn(2, 5)])
    with pytest.raises(ValueError, match="require grad"):
        loss(s, targets=[t, t.clone().requires_grad_(True)])
    with pytest.raises(ValueError, match="list of tensors"):
        loss(s, targets=[])
    mask = torch.ones(2, 4, dtype=torch.bool)
    mask[1] = False
    with pytest.raises(ValueError, match="no valid candidate"):
        loss(s, targets=t, mask=mask)
    with pytest.raises(ValueError, match="mask must have shape"):
        loss(s, targets=t, mask=mask[:, :3])
