"""Every text view: registered with modality text, strings in and strings out, seeded,
per-sample randomness, bad input and settings."""

from __future__ import annotations

import pytest
import torch

import manyview
from manyview.testing import build, check_view
from manyview_text.views import SpanSwap, TokenMask, WordDeletion

VIEWS = ["simcse", "token_mask", "word_deletion", "span_swap"]


def check_string_view(view, g, n: int = 4) -> None:
    """manyview.testing.check_view (the batch size kept, seeded calls repeat), and batches
    that are lists of strings, in and out."""
    check_view(view, n)
    x = view.example_inputs(n, generator=g(0))
    assert isinstance(x, list) and len(x) == n and all(isinstance(s, str) for s in x)
    a = view(x, generator=g(1))
    assert isinstance(a, list) and all(isinstance(s, str) for s in a)


@pytest.mark.parametrize("name", VIEWS)
def test_registered_with_modality_text(name):
    assert manyview.entry("view", name).modality == "text"


@pytest.mark.parametrize("name", VIEWS)
def test_string_view_contract(name, g):
    check_string_view(build("view", name), g)


@pytest.mark.parametrize("name", VIEWS)
def test_keeps_the_batch_and_leaves_the_input_alone(name, g, texts):
    view = build("view", name)
    before = list(texts)
    out = view(texts, generator=g(0))
    assert len(out) == len(texts) and all(isinstance(s, str) for s in out)
    assert before == texts
    assert out is not texts


@pytest.mark.parametrize(
    "view", [TokenMask(p=0.5), WordDeletion(p=0.5), SpanSwap(max_span=2)], ids=repr
)
def test_seeded_and_random_per_sample(view, g):
    texts = ["one two three four five six seven eight"] * 8
    a = view(texts, generator=g(0))
    assert a == view(texts, generator=g(0))
    assert a != view(texts, generator=g(1))
    assert len(set(a)) > 1, "every sample got the same augmentation"


@pytest.mark.parametrize("name", VIEWS)
@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ([], "empty list"),
        (["ok", 1], "item 1 is a int"),
        ("text", "wrap it"),
        (torch.ones(2), "list"),
    ],
)
def test_bad_input(name, bad, match, g):
    with pytest.raises(ValueError, match=match):
        build("view", name)(bad, generator=g(0))


@pytest.mark.parametrize(
    ("factory", "kwargs", "match"),
    [
        (TokenMask, {"p": 1.5}, r"\[0, 1\]"),
        (TokenMask, {"mask_token": "two words"}, "one non-empty word"),
        (TokenMask, {"mask_token": ""}, "one non-empty word"),
        (WordDeletion, {"p": -0.1}, r"\[0, 1\]"),
        (SpanSwap, {"max_span": 0}, "positive int"),
        (SpanSwap, {"swaps": 1.5}, "positive int"),
    ],
)
def test_bad_settings(factory, kwargs, match):
    with pytest.raises(ValueError, match=match):
        factory(**kwargs)
