"""word_deletion: words deleted at the rate p, one kept at least, order kept."""

from __future__ import annotations

from manyview_text.views import WordDeletion


def test_word_deletion(g):
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
