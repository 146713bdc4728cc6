"""Text views: strings in, strings out, seeded, per-sample randomness, bad input."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import default_collate

import manyview
from manyview.config import validate
from manyview.recipes.contrastive import ContrastiveRecipe
from manyview.testing import build
from manyview_text.views import SimCSE, SpanSwap, TokenMask, WordDeletion

VIEWS = ["simcse", "token_mask", "word_deletion", "span_swap"]
TEXTS = [
    "a photo of the digit seven on a table",
    "the spoken word three said twice",
    "one",
    "",
    "two  words",
]


def g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def check_string_view(view, n: int = 4) -> None:
    """manyview.testing.check_view for views whose batches are lists of strings (see the
    report: check_view reads len(output[0]) for a list)."""
    x = view.example_inputs(n, generator=g(0))
    assert isinstance(x, list) and len(x) == n and all(isinstance(s, str) for s in x)
    a = view(x, generator=g(1))
    b = view(x, generator=g(1))
    assert isinstance(a, list) and all(isinstance(s, str) for s in a)
    assert len(a) == n, f"the view changed the batch size from {n} to {len(a)}"
    assert a == b, "the view is not deterministic under a seeded generator"


@pytest.mark.parametrize("name", VIEWS)
def test_registered_with_modality_text(name):
    assert manyview.entry("view", name).modality == "text"


@pytest.mark.parametrize("name", VIEWS)
def test_string_view_contract(name):
    check_string_view(build("view", name))


@pytest.mark.parametrize("name", VIEWS)
def test_keeps_the_batch_and_leaves_the_input_alone(name):
    view = build("view", name)
    before = list(TEXTS)
    out = view(TEXTS, generator=g(0))
    assert len(out) == len(TEXTS) and all(isinstance(s, str) for s in out)
    assert before == TEXTS
    assert out is not TEXTS


@pytest.mark.parametrize(
    "view", [TokenMask(p=0.5), WordDeletion(p=0.5), SpanSwap(max_span=2)], ids=repr
)
def test_seeded_and_random_per_sample(view):
    texts = ["one two three four five six seven eight"] * 8
    a = view(texts, generator=g(0))
    assert a == view(texts, generator=g(0))
    assert a != view(texts, generator=g(1))
    assert len(set(a)) > 1, "every sample got the same augmentation"


def test_simcse_is_the_identity():
    assert SimCSE()(TEXTS, generator=g(0)) == TEXTS


def test_token_mask():
    texts = ["one two three four"]
    assert TokenMask(p=0.0)(texts, generator=g(0)) == texts
    assert TokenMask(p=1.0, mask_token="*")(texts, generator=g(0)) == ["* * * *"]
    words = " ".join(["w"] * 4000)
    masked = TokenMask(p=0.15)([words], generator=g(0))[0].split()
    assert len(masked) == 4000
    assert abs(masked.count("[MASK]") / 4000 - 0.15) < 0.03


def test_word_deletion():
    texts = ["one two three four"]
    assert WordDeletion(p=0.0)(texts, generator=g(0)) == texts
    for seed in range(5):  # every word deleted: one survivor, drawn uniformly
        (out,) = WordDeletion(p=1.0)(texts, generator=g(seed))
        assert out in texts[0].split()
    assert WordDeletion(p=0.5)([""], generator=g(0)) == [""]
    words = [f"w{i}" for i in range(2000)]
    out = WordDeletion(p=0.1)([" ".join(words)], generator=g(0))[0].split()
    assert abs(len(out) / 2000 - 0.9) < 0.03
    assert out == [w for w in words if w in set(out)], "the kept words keep their order"


def test_span_swap_only_reorders():
    text = "one two three four five six seven"
    for seed in range(20):
        (out,) = SpanSwap(max_span=3, swaps=2)([text], generator=g(seed))
        assert sorted(out.split()) == sorted(text.split())
    assert SpanSwap()(["one", ""], generator=g(0)) == ["one", ""]
    assert SpanSwap(max_span=1)(["one two"], generator=g(0)) == ["two one"]


def test_span_swap_swaps_spans():
    # max_span=2 with 4 words: either one-word or two-word spans move, never other shapes
    seen = {SpanSwap(max_span=2)(["a b c d"], generator=g(s))[0] for s in range(200)}
    assert "c d a b" in seen  # the only two-word swap
    assert seen <= {"c d a b", "b a c d", "c b a d", "d b c a", "a c b d", "a d c b", "a b d c"}


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
def test_bad_input(name, bad, match):
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


def test_simcse_through_the_contrastive_recipe():
    """The documented SimCSE configuration: the ``simcse`` view, two views, an encoder with
    dropout; the two views of a sentence differ in training mode only."""
    config = validate(
        {
            "data": {"name": "list"},
            "modalities": {
                "text": {
                    "encoder": "open_clip_text",
                    "encoder_options": {"dropout": 0.1},
                    "views": [{"name": "simcse"}],
                    "num_views": 2,
                }
            },
            "losses": [{"name": "infonce", "options": {"temperature": 0.05}}],
        }
    )
    data = [{"text": f"the digit {i}", "label": i, "index": i} for i in range(8)]
    recipe = ContrastiveRecipe(config, data)
    batch = default_collate(data)
    recipe.train()
    out = recipe.step(batch, torch.Generator().manual_seed(0))
    z = out.embeddings
    assert z.shape == (8, 2, 64) and torch.isfinite(out.loss)
    assert not torch.allclose(z[:, 0], z[:, 1])
    recipe.eval()
    with torch.no_grad():
        z = recipe.embed(batch, torch.Generator().manual_seed(0))
    assert torch.equal(z[:, 0], z[:, 1])
