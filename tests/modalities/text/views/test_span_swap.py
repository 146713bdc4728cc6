"""span_swap: spans of words swapped, nothing but reordered."""

from __future__ import annotations

from manyview_text.views import SpanSwap


def test_span_swap_only_reorders(g):
    text = "one two three four five six seven"
    for seed in range(20):
        (out,) = SpanSwap(max_span=3, swaps=2)([text], generator=g(seed))
        assert sorted(out.split()) == sorted(text.split())
    assert SpanSwap()(["one", ""], generator=g(0)) == ["one", ""]
    assert SpanSwap(max_span=1)(["one two"], generator=g(0)) == ["two one"]


def test_span_swap_swaps_spans(g):
    # max_span=2 with 4 words: either one-word or two-word spans move, never other shapes
    seen = {SpanSwap(max_span=2)(["a b c d"], generator=g(s))[0] for s in range(200)}
    assert "c d a b" in seen  # the only two-word swap
    assert seen <= {"c d a b", "b a c d", "c b a d", "d b c a", "a c b d", "a d c b", "a b d c"}
