"""WeightedLosses: names, weights, each loss's declared inputs, one-line build errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import manyview
from manyview.config import ConfigError
from manyview.recipes import WeightedLosses, loss_contract


def test_the_total_is_the_weighted_sum_and_components_are_unweighted():
    infonce, dhel = manyview.create("loss", "infonce"), manyview.create("loss", "mv_dhel")
    losses = WeightedLosses({"a": infonce, "b": dhel}, [2.0, 0.5])
    z = torch.randn(8, 3, 16, requires_grad=True)
    total, parts = losses(z)
    want = 2.0 * infonce(z) + 0.5 * dhel(z)
    torch.testing.assert_close(total, want)
    assert set(parts) == {"a", "b"} and not parts["a"].requires_grad
    torch.testing.assert_close(parts["b"], dhel(z).detach())
    total.backward()
    assert z.grad is not None


def test_each_loss_gets_only_the_inputs_it_declares():
    supcon, infonce = manyview.create("loss", "supcon"), manyview.create("loss", "infonce")
    losses = WeightedLosses([supcon, infonce])
    assert list(losses.weights) == ["supcon", "infonce"]
    z, y = torch.randn(8, 2, 16), torch.arange(8) % 4
    _, parts = losses(z, labels=y, index=torch.arange(8))  # infonce takes neither
    torch.testing.assert_close(parts["supcon"], supcon(z, labels=y))
    torch.testing.assert_close(parts["infonce"], infonce(z))
    assert losses.inputs_for("infonce", {"labels": y}) == {}


def test_a_needed_input_the_batch_lacks_is_named():
    losses = WeightedLosses([manyview.create("loss", "isogclr", num_samples=16)])
    with pytest.raises(ValueError, match=r"loss 'isogclr' needs `index=`.*has labels"):
        losses(torch.randn(8, 2, 16), labels=torch.zeros(8, dtype=torch.long))


def test_repeated_names_and_bad_weights():
    a, b = manyview.create("loss", "infonce"), manyview.create("loss", "infonce")
    assert list(WeightedLosses([a, b]).losses) == ["infonce", "infonce_2"]
    with pytest.raises(ValueError, match="2 weights for 1 losses"):
        WeightedLosses([a], [1.0, 2.0])
    with pytest.raises(ValueError, match=r"weights for unknown losses \['c'\]"):
        WeightedLosses({"a": a}, {"c": 1.0})
    with pytest.raises(ValueError, match=r"'x' is a str, not an nn\.Module"):
        WeightedLosses({"x": "infonce"})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="at least one loss"):
        WeightedLosses([])


def _specs(*names: str, **options) -> list[dict]:
    return [{"name": n, "weight": 1.0, "options": dict(options)} for n in names]


def test_from_config_fills_the_context_and_refuses_what_cannot_run():
    built = WeightedLosses.from_config(_specs("isogclr"), context={"dataset_size": 40})
    assert built.losses["isogclr"].num_samples == 40  # from_context, not a guess
    with pytest.raises(ConfigError, match=r"#1 \(kd\) takes a student and targets, but"):
        WeightedLosses.from_config(_specs("kd"))
    with pytest.raises(ConfigError, match=r"#1 \(infonce\) takes embeddings of M views"):
        WeightedLosses.from_config(_specs("infonce"), takes="student")
    with pytest.raises(ConfigError, match=r"needs `labels`, which the x recipe does not"):
        WeightedLosses.from_config(_specs("supremix"), provides=("index",), who="the x recipe")
    with pytest.raises(ConfigError, match=r"#1 \(infonce\):.*unexpected argument 'tau'"):
        WeightedLosses.from_config(_specs("infonce", tau=0.1))
    with pytest.raises(
        ConfigError, match=r"#1 \(clip\) takes 2\.\.2 views, but the recipe gives M = 3"
    ):
        WeightedLosses.from_config(_specs("clip")).check_views(3)


def test_loss_contract_defaults_for_a_loss_that_declares_nothing():
    class Plain(nn.Module):
        def forward(self, z):
            return z.sum()

    assert loss_contract(Plain()) == ("views", (), ())
    assert loss_contract(manyview.create("loss", "self_distill_gt")) == (
        "student",
        ("targets", "labels"),
        ("targets", "labels"),
    )
