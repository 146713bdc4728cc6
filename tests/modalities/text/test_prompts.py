"""Prompt templates, prompt ensembling (against a by-hand reference) and zero-shot logits."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from manyview_text import prompts
from manyview_text.prompts import (
    DIGIT_NAMES,
    ZeroShotClassifier,
    class_embeddings,
    ensemble,
    format_prompts,
    get_templates,
    zero_shot_logits,
)


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


def test_class_embeddings_use_eval_mode_and_restore_it():
    calls = []

    class Recorder(torch.nn.Module):
        def forward(self, texts):
            calls.append((list(texts), self.training, torch.is_grad_enabled()))
            return torch.stack([torch.tensor([len(t), 1.0]) for t in texts])

    enc = Recorder().train()
    w = class_embeddings(enc, ["ab", "abcd"], ["{}", "x{}x"], batch_size=3)
    assert enc.training
    assert [len(c[0]) for c in calls] == [3, 1]  # batched
    assert all(not training and not grad for _, training, grad in calls)
    want = ensemble(torch.tensor([[[2.0, 1], [4, 1]], [[4, 1], [6, 1]]]))
    assert torch.allclose(w, want)


def test_class_embeddings_with_the_text_encoder(text_encoder):
    w = class_embeddings(text_encoder, DIGIT_NAMES, "digit")
    assert w.shape == (10, text_encoder.output_dim)
    assert torch.allclose(w.norm(dim=1), torch.ones(10), atol=1e-5)
    assert torch.equal(w, class_embeddings(text_encoder, DIGIT_NAMES, "digit"))


def test_zero_shot_logits():
    classes = torch.eye(3, 4) * 2
    feats = torch.tensor([[0.0, 5, 0, 0], [1, 0, 0, 0.1]])
    logits = zero_shot_logits(feats, classes, scale=10.0)
    assert logits.shape == (2, 3)
    assert logits.argmax(dim=1).tolist() == [1, 0]
    assert torch.allclose(logits[0], torch.tensor([0.0, 10, 0]))
    clf = ZeroShotClassifier(classes, scale=10.0)
    assert torch.equal(clf(feats), logits)
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        zero_shot_logits(feats, torch.eye(3))


def test_zero_shot_classifier_from_encoder(text_encoder):
    clf = ZeroShotClassifier.from_encoder(text_encoder, DIGIT_NAMES[:3], "a photo of the digit {}")
    feats = text_encoder(["a photo of the digit one"]).detach()
    logits = clf(feats)
    assert logits.shape == (1, 3) and logits.argmax().item() == 1  # its own prompt wins
