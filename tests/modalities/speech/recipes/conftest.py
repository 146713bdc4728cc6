"""What the speech recipes' tests share: the speech_supcon configuration (audio_text's
builds on it) and the spoken-word data it trains on."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

ENCODER = {"n_mels": 40, "channels": [64, 96, 128], "output_dim": 128}


VIEWS = [
    {"name": "audio_shift", "options": {"max_seconds": 0.1}},
    {"name": "audio_gain", "options": {"min_db": -6, "max_db": 6}},
    {"name": "audio_noise", "options": {"min_snr_db": 10, "max_snr_db": 30, "p": 0.8}},
    {"name": "audio_speed", "options": {"factors": [0.9, 1.0, 1.1]}},
    {"name": "log_mel", "options": {"n_mels": 40}},
    {"name": "spec_augment", "options": {"freq_width": 5, "time_width": 8}},
]


# Wide rates and pitches, and half the voice variants held out: an untrained encoder's kNN
# is far from perfect here, so what the run learns shows.
WORDS = {"rate": [100, 200], "pitch": [15, 85], "test_variants": 4, "clip_seconds": 0.8}


TINY = {
    "words": ["yes", "no", "stop"],
    "dialects": ["en-us"],
    "variants": ["m1", "f3", "klatt"],
    "test_variants": 1,
    "clip_seconds": 0.5,
}


def speech_config(steps: int, data: dict, **recipe_options) -> dict:
    return {
        "run": {
            "recipe": "speech_supcon",
            "steps": steps,
            "batch_size": 64,
            "log_every": 20,
            "metrics_every": 0,
            "checkpoint_every": 10_000,
        },
        "data": {"name": "spoken_words", "options": data},
        "optimizer": {"name": "adamw", "lr": 3e-3, "weight_decay": 1e-4},
        "schedule": {"kind": "cosine", "warmup_steps": 10},
        "modalities": {
            "audio": {
                "encoder": "logmel_cnn",
                "encoder_options": ENCODER,
                "views": VIEWS,
                "num_views": 2,
                "projector_dim": 64,
                "projector_hidden": 128,
            }
        },
        "losses": [{"name": "supcon", "options": {"temperature": 0.1}}],
        "recipe_options": recipe_options,
    }


@pytest.fixture
def speech() -> SimpleNamespace:
    """``speech.config(steps, data, **recipe_options)``: a speech_supcon configuration (a
    dict); ``speech.words``, ``speech.tiny``: spoken_words options; ``speech.encoder``: the
    encoder's options."""
    return SimpleNamespace(config=speech_config, words=WORDS, tiny=TINY, encoder=ENCODER)
