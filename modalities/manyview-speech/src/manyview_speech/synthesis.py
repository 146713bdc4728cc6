"""Offline speech synthesis with eSpeak NG, through the ``espeakng-loader`` wheel.

The wheel ships ``libespeak-ng`` and its data; this module drives the library with ctypes
(no apt package, no subprocess)::

    from manyview_speech.synthesis import synthesize
    wave = synthesize("seven", voice="en-us+f3", rate=140, pitch=60, sample_rate=16000)

**Deterministic.** eSpeak keeps state in C globals from one utterance to the next (the
pitch flutter, the wave phase, a random generator), so the same call can give different
samples depending on what was said before. Each call therefore loads a private copy of the
library afresh, seeds its random generator, synthesises, and unloads it again: the same
arguments always give the same samples, whatever ran before.

**Not concurrent.** The library's state is global to the process; calls are serialised by a
lock (threads wait their turn). Separate processes are independent.
"""

from __future__ import annotations

import atexit
import ctypes
import functools
import os
import shutil
import tempfile
import threading
from pathlib import Path

import torch
from torch import Tensor

__all__ = [
    "NATIVE_SAMPLE_RATE",
    "SynthesisError",
    "available_variants",
    "available_voices",
    "synthesize",
]

NATIVE_SAMPLE_RATE = 22050
"""The rate eSpeak NG synthesises at (Hz)."""

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_RATE, _PITCH, _RANGE = 1, 3, 4  # espeak_PARAMETER
_EE_NOT_FOUND = 2
_LOCK = threading.Lock()
_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class SynthesisError(RuntimeError):
    """eSpeak NG could not be loaded or could not speak the request."""


def _loader():  # type: ignore[no-untyped-def]
    try:
        import espeakng_loader
    except ImportError:
        raise SynthesisError(
            "speech synthesis needs the espeakng-loader package: pip install espeakng-loader"
        ) from None
    return espeakng_loader


@functools.cache
def _private_library() -> str:
    """A per-process copy of libespeak-ng, so that no other user of the same file (a
    phonemizer, say) shares our C state and unloading it really unloads it."""
    source = Path(_loader().get_library_path())
    if not source.is_file():
        raise SynthesisError(f"espeakng-loader's library is missing: {source}")
    folder = tempfile.mkdtemp(prefix="manyview-espeak-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    target = Path(folder) / source.name
    shutil.copyfile(source, target)
    return str(target)


@functools.cache
def _data_path() -> str:
    return str(_loader().get_data_path())


@functools.cache
def available_voices() -> tuple[str, ...]:
    """The language voices eSpeak NG knows (``"en-us"``, ``"en-gb-scotland"``, ``"it"``...),
    lower case, sorted. Any of them takes a ``+variant`` (:func:`available_variants`)."""
    root = Path(_data_path()) / "lang"
    return tuple(sorted({p.name.lower() for p in root.rglob("*") if p.is_file()}))


@functools.cache
def available_variants() -> tuple[str, ...]:
    """The voice variants (``"f3"``, ``"m1"``, ``"klatt"``, ``"Annie"``...) for ``voice+variant``."""
    root = Path(_data_path()) / "voices" / "!v"
    return tuple(sorted(p.name for p in root.iterdir() if p.is_file()))


def _check(text: str, voice: str, rate: int, pitch: int, pitch_range: int | None) -> None:
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"synthesize: text must be a non-empty string, got {text!r}")
    if not isinstance(voice, str) or not voice:
        raise ValueError(f"synthesize: voice must be a name such as 'en-us+f3', got {voice!r}")
    variant = voice.partition("+")[2]
    if variant and variant not in available_variants():
        close = [v for v in available_variants() if v.lower() == variant.lower()]
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"synthesize: unknown voice variant {variant!r} in {voice!r}{hint} "
            f"(see manyview_speech.synthesis.available_variants())"
        )
    if not 80 <= rate <= 450:
        raise ValueError(f"synthesize: rate must be 80..450 words per minute, got {rate}")
    if not 0 <= pitch <= 99:
        raise ValueError(f"synthesize: pitch must be 0..99, got {pitch}")
    if pitch_range is not None and not 0 <= pitch_range <= 99:
        raise ValueError(f"synthesize: pitch_range must be 0..99, got {pitch_range}")


def synthesize(
    text: str,
    voice: str = "en-us",
    *,
    rate: int = 150,
    pitch: int = 50,
    pitch_range: int | None = None,
    sample_rate: int | None = None,
    seed: int = 0,
) -> Tensor:
    """Speak ``text`` and return the waveform, float32 mono in [-1, 1].

    Args:
        text: what to say (UTF-8).
        voice: a language voice, optionally with a variant: ``"en-us"``, ``"en-us+f3"``,
            ``"en-gb-scotland+klatt"`` (:func:`available_voices`, :func:`available_variants`).
        rate: speaking rate in words per minute (80..450).
        pitch: base pitch, 0..99 (50 is the voice's normal).
        pitch_range: pitch range, 0..99 (``None``: the voice's own).
        sample_rate: resample to this rate (``None``: eSpeak's native 22050 Hz).
        seed: seeds eSpeak's random generator (breathy and whispered voices use it).

    Returns:
        A 1-D float32 tensor of samples at ``sample_rate`` (or 22050 Hz).

    Raises:
        ValueError: an unknown voice or variant, or parameters out of range.
        SynthesisError: the library could not be loaded or produced no audio.
    """
    _check(text, voice, rate, pitch, pitch_range)
    with _LOCK:
        pcm = _speak(text, voice, int(rate), int(pitch), pitch_range, int(seed))
    wave = torch.frombuffer(bytearray(pcm), dtype=torch.int16).to(torch.float32) / 32768.0
    if sample_rate is not None and sample_rate != NATIVE_SAMPLE_RATE:
        from manyview_speech.audio import resample

        wave = resample(wave, NATIVE_SAMPLE_RATE, sample_rate)
    return wave


def _speak(
    text: str, voice: str, rate: int, pitch: int, pitch_range: int | None, seed: int
) -> bytes:
    """One utterance on a freshly loaded library (the caller holds the lock)."""
    chunks: list[bytes] = []

    def collect(wav, count, _events):  # type: ignore[no-untyped-def]
        if count > 0 and wav:
            chunks.append(ctypes.string_at(wav, 2 * count))
        return 0

    callback = _CALLBACK(collect)
    try:
        lib = ctypes.CDLL(_private_library(), mode=os.RTLD_LOCAL)
    except OSError as exc:
        raise SynthesisError(f"could not load libespeak-ng: {exc}") from None
    handle = lib._handle
    try:
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        rate_hz = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, _data_path().encode(), 0)
        if rate_hz != NATIVE_SAMPLE_RATE:
            raise SynthesisError(
                f"espeak_Initialize returned {rate_hz} (expected {NATIVE_SAMPLE_RATE} Hz); "
                f"is the data folder {_data_path()} complete?"
            )
        lib.espeak_SetSynthCallback(callback)
        if hasattr(lib, "espeak_ng_SetRandSeed"):
            lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
            lib.espeak_ng_SetRandSeed(seed)
        status = lib.espeak_SetVoiceByName(voice.encode())
        if status != 0:
            why = "not found" if status == _EE_NOT_FOUND else f"error {status}"
            raise ValueError(
                f"synthesize: voice {voice!r}: {why} "
                f"(see manyview_speech.synthesis.available_voices())"
            )
        lib.espeak_SetParameter(_RATE, rate, 0)
        lib.espeak_SetParameter(_PITCH, pitch, 0)
        if pitch_range is not None:
            lib.espeak_SetParameter(_RANGE, int(pitch_range), 0)
        data = text.encode("utf-8")
        status = lib.espeak_Synth(
            data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
        )
        lib.espeak_Synchronize()
        if status != 0:
            raise SynthesisError(f"espeak_Synth failed with status {status} for {text!r}")
        lib.espeak_Terminate()
    finally:
        del lib
        import _ctypes

        _ctypes.dlclose(handle)
    if not chunks:
        raise SynthesisError(f"eSpeak produced no audio for {text!r} with voice {voice!r}")
    return b"".join(chunks)
