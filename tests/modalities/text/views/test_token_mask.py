"""token_mask: words replaced by the mask token at the rate p."""

from __future__ import annotations

from manyview_text.views import TokenMask


def test_token_mask(g):
    texts = ["one two three four"]
    assert TokenMask(p=0.0)(texts, generator=g(0)) == texts
    assert TokenMask(p=1.0, mask_token="*")(texts, generator=g(0)) == ["* * * *"]
    words = " ".join(["w"] * 4000)
    masked = TokenMask(p=0.15)([words], generator=g(0))[0].split()
    assert len(masked) == 4000
    assert abs(masked.count("[MASK]") / 4000 - 0.15) < 0.03
