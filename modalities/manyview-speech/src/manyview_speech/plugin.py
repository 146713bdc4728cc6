"""Registers manyview-speech's entries (entry-point group ``manyview``).

Every factory is a ``"module:Attr"`` string, so ``manyview list`` imports neither torch
nor torchaudio; the modules load when an entry is created. Each table maps a registered
name to its factory and summary (:func:`manyview.register_all`).
"""

from __future__ import annotations

from typing import Any

import manyview

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".aiff", ".aif")
"""The audio reader's file endings (``manyview_speech.audio.AUDIO_EXTENSIONS``, written out
here so that listing imports nothing heavy)."""

VIEWS = {
    "audio_crop": (
        "manyview_speech.views.waveform:AudioCrop",
        "Random fixed-length window of each waveform (zero-padded if short)",
    ),
    "audio_shift": (
        "manyview_speech.views.waveform:AudioShift",
        "Random time shift of each waveform, zero-filled or circular",
    ),
    "audio_gain": ("manyview_speech.views.waveform:AudioGain", "Random gain in dB per waveform"),
    "audio_noise": (
        "manyview_speech.views.waveform:AudioNoise",
        "White or pink noise at a random SNR per waveform",
    ),
    "audio_speed": (
        "manyview_speech.views.waveform:AudioSpeed",
        "Speed perturbation by factors drawn per waveform (Kaldi style)",
    ),
    "log_mel": (
        "manyview_speech.views.features:LogMelView",
        "Waveforms to log-mel features (N, n_mels, frames)",
    ),
    "mfcc": (
        "manyview_speech.views.features:MFCCView",
        "Waveforms to MFCC features (N, n_mfcc, frames)",
    ),
    "spec_augment": (
        "manyview_speech.views.spec_augment:SpecAugment",
        "Frequency and time masks drawn per sample (SpecAugment)",
    ),
    "speech_augment": (
        "manyview_speech.views.speech_augment:SpeechAugment",
        "Shift, gain, noise, speed, then log-mel/MFCC and SpecAugment, with strength presets",
    ),
}
"""Waveform augmentations, feature steps and SpecAugment, batched and seeded (audio)."""

ENCODERS = {
    "logmel_cnn": (
        "manyview_speech.encoders.logmel:LogMelEncoder",
        "Temporal CNN over log-mel features of waveforms (the CPU default)",
    ),
    "logmel_transformer": (
        "manyview_speech.encoders.logmel:LogMelTransformerEncoder",
        "Temporal CNN + transformer layers over log-mel features of waveforms",
    ),
    "wav2vec2": (
        "manyview_speech.encoders.wav2vec2:Wav2Vec2Encoder",
        "torchaudio wav2vec 2.0 over waveforms, mean-pooled (random init or local weights)",
    ),
    "hubert": (
        "manyview_speech.encoders.wav2vec2:HuBERTEncoder",
        "torchaudio HuBERT over waveforms, mean-pooled (random init or local weights)",
    ),
}
"""Log-mel CNN / transformer, wav2vec2 and HuBERT (audio)."""

DATASETS = {
    "spoken_words": {
        "factory": "manyview_speech.datasets.spoken_words:SpokenWords",
        "summary": "Words spoken by eSpeak NG voices (word/speaker/dialect labels), made offline",
        "modalities": "audio,text",
    },
    "audiofolder": {
        "factory": "manyview_speech.datasets.audiofolder:AudioFolder",
        "summary": "Audio files in class subfolders; unreadable files are skipped and counted",
        "modalities": "audio",
    },
}
"""Spoken words synthesised offline, and folders of audio files."""

CONFIGS = {
    "spoken_words_supcon": (
        "manyview_speech.configs:spoken_words_supcon",
        "spoken_words: SupCon pre-training of a log-mel CNN that transfers to unseen voices",
    ),
}
"""The shipped run configurations (``manyview train NAME``)."""

READERS = {
    "audio": {
        "factory": "manyview_speech.readers.audio:AudioReader",
        "summary": "Audio files through soundfile to mono float32 at one rate, cut or padded",
        "suffixes": AUDIO_SUFFIXES,
    },
}
"""Audio files to mono waveforms at one rate (the manifest dataset's audio columns)."""

RECIPES = {
    "speech_supcon": (
        "manyview_speech.recipes.speech_supcon:SpeechClassificationRecipe",
        "Speech classification: SupCon pre-training or SupCon beside cross-entropy",
    ),
    "audio_text": (
        "manyview_speech.recipes.audio_text:AudioTextRecipe",
        "Audio encoder and text encoder contrasted in one space (CLAP style)",
    ),
}
"""Supervised-contrastive speech classification and audio-text contrastive training."""


@manyview.hookimpl
def manyview_register_views(register: Any) -> None:
    manyview.register_all(register, VIEWS, modality="audio")


@manyview.hookimpl
def manyview_register_encoders(register: Any) -> None:
    manyview.register_all(register, ENCODERS, modality="audio")


@manyview.hookimpl
def manyview_register_datasets(register: Any) -> None:
    manyview.register_all(register, DATASETS)


@manyview.hookimpl
def manyview_register_configs(register: Any) -> None:
    manyview.register_all(register, CONFIGS)


@manyview.hookimpl
def manyview_register_readers(register: Any) -> None:
    manyview.register_all(register, READERS, modality="audio")


@manyview.hookimpl
def manyview_register_recipes(register: Any) -> None:
    manyview.register_all(register, RECIPES)
