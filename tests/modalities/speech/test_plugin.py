"""The plugin registers through its entry point, listing it imports nothing heavy, and every
encoder and view it registers passes its contract."""

from __future__ import annotations

import pytest

import manyview
from manyview.testing import check_encoder, check_view

SPEECH_ENCODERS = [
    e.name for e in manyview.manager.registry().entries("encoder") if e.plugin == "manyview-speech"
]
SPEECH_VIEWS = [
    e.name for e in manyview.manager.registry().entries("view") if e.plugin == "manyview-speech"
]


def list_json(fresh_cli, kind: str) -> list[dict]:
    result = fresh_cli(["list", kind, "--json"], heavy=("torch", "torchaudio"))
    assert result.returncode == 0, result.stderr
    assert result.heavy == [], f"listing imported {result.heavy}"
    return result.rows()


def test_manyview_list_shows_audio_entries_without_importing_torch(fresh_cli):
    encoders = {
        e["name"]: e for e in list_json(fresh_cli, "encoder") if e["plugin"] == "manyview-speech"
    }
    assert {"logmel_cnn", "logmel_transformer", "wav2vec2", "hubert"} <= set(encoders)
    assert all(encoders[n]["modality"] == "audio" for n in ("logmel_cnn", "wav2vec2", "hubert"))
    views = [e for e in list_json(fresh_cli, "view") if e["plugin"] == "manyview-speech"]
    assert {v["name"] for v in views} >= {"spec_augment", "audio_noise", "speech_augment"}
    assert {v["modality"] for v in views} == {"audio"}


def test_plugin_loaded_with_everything_registered():
    (info,) = [p for p in manyview.plugins() if p.distribution == "manyview-speech"]
    assert info.status == "loaded", info.error
    assert set(info.registered["recipe"]) == {"speech_supcon", "audio_text"}
    assert set(info.registered["dataset"]) == {"spoken_words", "audiofolder"}
    assert info.registered["reader"] == ["audio"]
    assert info.registered["config"] == ["spoken_words_supcon"]
    assert "char_ngram" not in info.registered["encoder"]  # manyview-text's, a dependency


@pytest.mark.parametrize("name", SPEECH_ENCODERS)
def test_encoder_contract(name):
    check_encoder(manyview.create("encoder", name))


@pytest.mark.parametrize("name", SPEECH_VIEWS)
def test_view_contract(name):
    check_view(manyview.create("view", name))


def test_registered_with_their_modality():
    kinds = {e.name: e.modality for e in manyview.manager.registry().entries("encoder")}
    assert {kinds[n] for n in ("logmel_cnn", "logmel_transformer", "wav2vec2", "hubert")} == {
        "audio"
    }
    assert all(manyview.entry("view", n).modality == "audio" for n in SPEECH_VIEWS)
