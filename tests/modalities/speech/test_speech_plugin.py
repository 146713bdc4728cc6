"""The plugin registers through its entry point, and listing it imports nothing heavy."""

from __future__ import annotations

import manyview


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
