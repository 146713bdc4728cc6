"""The build context: factories declare the arguments a recipe fills in (from_context)."""

from __future__ import annotations

from typing import ClassVar

import pytest

from manyview.context import BuildContext, build, context_arguments


class Needs:
    from_context: ClassVar[dict[str, str]] = {"size": "dataset_size", "width": "embed_dim"}

    def __init__(self, size=1, width=2, other=3):
        self.size, self.width, self.other = size, width, other


def test_declared_arguments_come_from_the_context_unless_given():
    context = BuildContext(dataset_size=10, embed_dim=None, steps=5)
    assert "embed_dim" not in context and len(context) == 2  # None values are left out
    assert context_arguments(Needs, {}, context) == {"size": 10}
    assert context_arguments(Needs, {"size": 4}, context) == {}
    assert context_arguments(Needs, {}, None) == {}
    more = context.with_(embed_dim=7)
    assert context_arguments(Needs, {}, more) == {"size": 10, "width": 7}
    assert more["context"] is more and "context" in more  # nested tables get it whole


def test_from_context_must_be_a_mapping():
    class Bad:
        from_context: ClassVar[list[str]] = ["size"]

    with pytest.raises(TypeError, match="from_context must map constructor arguments"):
        context_arguments(Bad, {}, {})


def test_build_through_the_registry():
    loss = build("loss", "isogclr", {"rho": 6.0}, {"dataset_size": 33})
    assert loss.num_samples == 33
    mlp = build("encoder", "mlp", {"output_dim": 4}, {"input_dim": 5})
    assert mlp.input_dim == 5 and mlp.output_dim == 4
