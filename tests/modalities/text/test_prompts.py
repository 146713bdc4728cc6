"""manyview_text.prompts: the core's templates re-exported, class embeddings through a text
tower and zero-shot logits."""

from __future__ import annotations

import pytest
import torch

from manyview_text import prompts
from manyview_text.prompts import (
    DIGIT_NAMES,
    ZeroShotClassifier,
    class_embeddings,
    ensemble,
    zero_shot_logits,
)


def test_the_core_prompts_are_re_exported():
    from manyview.benchmarks import prompts as core

    for name in ("DIGIT_NAMES", "TEMPLATES", "ensemble", "format_prompts", "get_templates"):
        assert getattr(prompts, name) is getattr(core, name)


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
