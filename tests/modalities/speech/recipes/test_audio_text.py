"""The audio_text recipe through the core Trainer: zero-shot word recognition on held-out
voices, its configuration errors, and GradCache training the same objective."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import manyview
from manyview.config import ConfigError, validate
from manyview.training.trainer import Trainer
from manyview_speech.datasets.spoken_words import SpokenWords


def audio_text_config(speech, steps: int, data: dict) -> dict:
    config = speech.config(steps, data)
    config["run"]["recipe"] = "audio_text"
    config["modalities"]["text"] = {"encoder": "char_ngram", "encoder_options": {"output_dim": 128}}
    for modality in config["modalities"].values():
        modality["projector_dim"] = 64
    return config


@pytest.mark.slow
def test_audio_text_matches_held_out_voices_to_their_words(tmp_path, speech):
    """Zero-shot word recognition: each held-out clip against the 10 words' text embeddings."""
    trainer = Trainer(
        validate(audio_text_config(speech, 40, speech.words)), tmp_path, progress=False
    )
    metrics = trainer.fit()
    test = SpokenWords(**speech.words, split="test")
    recipe = trainer.recipe.eval()
    words = list(test.classes)
    with torch.no_grad():
        audio = F.normalize(recipe.embed_audio(test.audio), dim=1)
        text = F.normalize(recipe.embed_text(words), dim=1)
    accuracy = float(((audio @ text.T).argmax(1) == test.labels).float().mean())
    print(f"\naudio-text zero-shot on held-out voices: {accuracy:.3f} (chance 0.100); {metrics}")
    assert accuracy >= 0.5


def test_audio_text_config_errors(speech):
    config = audio_text_config(speech, 1, speech.tiny)
    config["recipe_options"] = {"positives": "captions"}
    with pytest.raises(ConfigError, match="positives must be"):
        manyview.entry("recipe", "audio_text").load()(validate(config), SpokenWords(**speech.tiny))
    config = audio_text_config(speech, 1, speech.tiny)
    del config["modalities"]["text"]
    with pytest.raises(ConfigError, match=r"exactly \[modalities.audio\] and \[modalities.text\]"):
        manyview.entry("recipe", "audio_text").load()(validate(config), SpokenWords(**speech.tiny))


def test_audio_text_gradcache_trains_the_same_objective():
    """Regression: audio_text's positives (clips with the same text) once applied only to
    the plain step, so GradCache silently trained another objective. Both paths now share
    the recipe's objective; the positives visibly change the gradients."""
    from manyview.testing.recipes import _batch, _build, _grads, example_config
    from manyview.training.strategies import GradCacheStep, PlainStep

    def grads(positives: str, chunk: int | None) -> dict[str, torch.Tensor]:
        config = example_config("audio_text", [f'recipe_options.positives="{positives}"'])
        recipe, dataset = _build(config)
        batch = _batch(dataset, 6)
        torch.manual_seed(0)
        step = PlainStep(recipe) if chunk is None else GradCacheStep(recipe, chunk, 1)
        assert step.run(batch, torch.Generator().manual_seed(1), 1.0) is not None
        return _grads(recipe)

    plain, cached = grads("text", None), grads("text", 6)
    for key, want in plain.items():
        torch.testing.assert_close(cached[key], want, rtol=1e-4, atol=1e-6, msg=key)
    other = grads("label", 6)
    assert any(not torch.allclose(other[k], v) for k, v in plain.items())
