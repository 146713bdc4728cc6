"""Registers manyview-speech's entries (entry-point group ``manyview``).

Every factory is a ``"module:Attr"`` string, so ``manyview list`` imports neither torch
nor torchaudio; the modules load when an entry is created.
"""

from __future__ import annotations

from typing import Any

import manyview

_PKG = "manyview_speech"

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".aiff", ".aif")
"""The audio reader's file endings (``manyview_speech.audio.AUDIO_EXTENSIONS``, written out
here so that listing imports nothing heavy)."""


@manyview.hookimpl
def manyview_register_views(register: Any) -> None:
    """Waveform augmentations, feature steps and SpecAugment, batched and seeded."""
    views = {
        "audio_crop": ("waveform:AudioCrop", "Random fixed-length window of each waveform (zero-padded if short)"),
        "audio_shift": ("waveform:AudioShift", "Random time shift of each waveform, zero-filled or circular"),
        "audio_gain": ("waveform:AudioGain", "Random gain in dB per waveform"),
        "audio_noise": ("waveform:AudioNoise", "White or pink noise at a random SNR per waveform"),
        "audio_speed": ("waveform:AudioSpeed", "Speed perturbation by factors drawn per waveform (Kaldi style)"),
        "log_mel": ("features:LogMelView", "Waveforms to log-mel features (N, n_mels, frames)"),
        "mfcc": ("features:MFCCView", "Waveforms to MFCC features (N, n_mfcc, frames)"),
        "spec_augment": ("spec_augment:SpecAugment", "Frequency and time masks drawn per sample (SpecAugment)"),
        "speech_augment": (
            "speech_augment:SpeechAugment",
            "Shift, gain, noise, speed, then log-mel/MFCC and SpecAugment, with strength presets",
        ),
    }  # fmt: skip
    for name, (target, summary) in views.items():
        register(name, f"{_PKG}.views.{target}", summary=summary, modality="audio")


@manyview.hookimpl
def manyview_register_encoders(register: Any) -> None:
    """Log-mel CNN / transformer, wav2vec2 and HuBERT."""
    register(
        "logmel_cnn",
        f"{_PKG}.encoders.logmel:LogMelEncoder",
        summary="Temporal CNN over log-mel features of waveforms (the CPU default)",
        modality="audio",
    )
    register(
        "logmel_transformer",
        f"{_PKG}.encoders.logmel:LogMelTransformerEncoder",
        summary="Temporal CNN + transformer layers over log-mel features of waveforms",
        modality="audio",
    )
    register(
        "wav2vec2",
        f"{_PKG}.encoders.wav2vec2:Wav2Vec2Encoder",
        summary="torchaudio wav2vec 2.0 over waveforms, mean-pooled (random init or local weights)",
        modality="audio",
    )
    register(
        "hubert",
        f"{_PKG}.encoders.wav2vec2:HuBERTEncoder",
        summary="torchaudio HuBERT over waveforms, mean-pooled (random init or local weights)",
        modality="audio",
    )


@manyview.hookimpl
def manyview_register_datasets(register: Any) -> None:
    """Spoken words synthesised offline, and folders of audio files."""
    register(
        "spoken_words",
        f"{_PKG}.datasets.spoken_words:SpokenWords",
        summary="Words spoken by eSpeak NG voices (word/speaker/dialect labels), made offline",
        modalities="audio,text",
    )
    register(
        "audiofolder",
        f"{_PKG}.datasets.audiofolder:AudioFolder",
        summary="Audio files in class subfolders; unreadable files are skipped and counted",
        modalities="audio",
    )


@manyview.hookimpl
def manyview_register_configs(register: Any) -> None:
    """The shipped run configurations (``manyview train NAME``)."""
    register(
        "spoken_words_supcon",
        f"{_PKG}.configs:spoken_words_supcon",
        summary="spoken_words: SupCon pre-training of a log-mel CNN that transfers to unseen voices",
    )


@manyview.hookimpl
def manyview_register_readers(register: Any) -> None:
    """Audio files to mono waveforms at one rate (the manifest dataset's audio columns)."""
    register(
        "audio",
        f"{_PKG}.readers.audio:AudioReader",
        summary="Audio files through soundfile to mono float32 at one rate, cut or padded",
        modality="audio",
        suffixes=AUDIO_SUFFIXES,
    )


@manyview.hookimpl
def manyview_register_recipes(register: Any) -> None:
    """Supervised-contrastive speech classification and audio-text contrastive training."""
    register(
        "speech_supcon",
        f"{_PKG}.recipes.speech_supcon:SpeechClassificationRecipe",
        summary="Speech classification: SupCon pre-training or SupCon beside cross-entropy",
    )
    register(
        "audio_text",
        f"{_PKG}.recipes.audio_text:AudioTextRecipe",
        summary="Audio encoder and text encoder contrasted in one space (CLAP style)",
    )
