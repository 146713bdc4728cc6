"""Zero-shot prompts: template sets, formatting with class names, and prompt ensembling
(against a by-hand reference)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from manyview.benchmarks import prompts
from manyview.benchmarks.prompts import DIGIT_NAMES, ensemble, format_prompts, get_templates


def test_built_in_and_user_templates():
    assert get_templates("digit")[0] == "a photo of the digit {}."
    assert get_templates("spoken_word")[0] == "the spoken word {}."
    assert get_templates("a sketch of {}") == ("a sketch of {}",)
    user = ["a {} in {{braces}}", lambda c: f"{c.upper()}!"]
    assert format_prompts(["cat", "dog"], user) == [
        ["a cat in {braces}", "CAT!"],
        ["a dog in {braces}", "DOG!"],
    ]
    out = format_prompts(DIGIT_NAMES, "digit")
    assert len(out) == 10 and len(out[7]) == len(prompts.DIGIT_TEMPLATES)
    assert out[7][0] == "a photo of the digit seven."


@pytest.mark.parametrize(
    ("templates", "match"),
    [
        ("digits", "unknown template set"),
        ([], "empty"),
        (["no placeholder"], "must have a '{}'"),
        (["a {name}"], "must have a '{}'"),
        (["a {"], "not a valid format string"),
        ([3], "callable"),
    ],
)
def test_bad_templates(templates, match):
    with pytest.raises(ValueError, match=match):
        format_prompts(["cat"], templates)


@pytest.mark.parametrize("names", [[], "cat", ["cat", ""], ["cat", 3]])
def test_bad_classnames(names):
    with pytest.raises(ValueError, match="classnames"):
        format_prompts(names, "plain")


def test_ensembling_math_against_a_loop():
    torch.manual_seed(0)
    e = torch.randn(3, 5, 8, dtype=torch.float64) * torch.rand(3, 5, 1, dtype=torch.float64) * 10
    want = torch.empty(3, 8, dtype=torch.float64)
    for c in range(3):
        acc = torch.zeros(8, dtype=torch.float64)
        for t in range(5):
            acc += e[c, t] / e[c, t].norm()
        acc /= 5
        want[c] = acc / acc.norm()
    got = ensemble(e)
    assert torch.allclose(got, want, atol=1e-12)
    assert torch.allclose(got.norm(dim=1), torch.ones(3, dtype=torch.float64))
    # the mean of *normalised* embeddings: a template with a large norm has no extra weight
    assert not torch.allclose(got, F.normalize(e.mean(dim=1), dim=-1))
    assert torch.allclose(ensemble(e[0]), want[0], atol=1e-12)  # (T, D) for one class
    with pytest.raises(ValueError, match=r"\(C, T, D\)"):
        ensemble(torch.zeros(8))
