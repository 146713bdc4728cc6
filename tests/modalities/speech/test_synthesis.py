"""eSpeak NG synthesis through espeakng-loader: format, determinism, voices, concurrency."""

from __future__ import annotations

import threading

import pytest
import torch

from manyview_speech import synthesis
from manyview_speech.synthesis import NATIVE_SAMPLE_RATE, synthesize


def test_a_word_is_float32_mono_at_22050():
    x = synthesize("seven")
    assert x.dtype == torch.float32 and x.dim() == 1
    assert 0.2 < x.shape[0] / NATIVE_SAMPLE_RATE < 1.5
    assert x.abs().max() <= 1.0 and x.abs().max() > 0.1


def test_same_call_same_samples_whatever_ran_before():
    first = synthesize("three", "en-us+f3", rate=140, pitch=60)
    for other in ("nine", "hello world", "zero"):
        synthesize(other, "en+klatt", rate=200, pitch=10)
    again = synthesize("three", "en-us+f3", rate=140, pitch=60)
    assert torch.equal(first, again)


def test_breathy_voices_depend_only_on_the_seed():
    a = synthesize("four", "en-us+whisper", seed=0)
    b = synthesize("four", "en-us+whisper", seed=0)
    c = synthesize("four", "en-us+whisper", seed=1)
    assert torch.equal(a, b)
    n = min(len(a), len(c))
    assert not torch.equal(a[:n], c[:n])


def test_voices_variants_rate_and_pitch_change_the_audio():
    base = synthesize("five", "en-us")
    for kwargs in (
        {"voice": "en-us+f3"},
        {"voice": "en-gb-scotland"},
        {"voice": "en-us", "rate": 250},
        {"voice": "en-us", "pitch": 90},
    ):
        other = synthesize("five", **kwargs)
        n = min(len(base), len(other))
        assert not torch.allclose(base[:n], other[:n], atol=1e-3), kwargs
    assert len(synthesize("five", rate=250)) < len(base)  # faster is shorter


def test_resampled_to_16k():
    x = synthesize("eight", sample_rate=16000)
    native = synthesize("eight")
    assert abs(x.shape[0] - native.shape[0] * 16000 / NATIVE_SAMPLE_RATE) <= 2


def test_voice_lists():
    assert {"en-us", "en-gb-scotland", "it"} <= set(synthesis.available_voices())
    assert {"f3", "m1", "klatt", "whisper"} <= set(synthesis.available_variants())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"voice": "xx-nowhere"}, "voice 'xx-nowhere': not found"),
        ({"voice": "en+F3"}, "did you mean 'f3'"),
        ({"rate": 10}, "rate must be 80..450"),
        ({"pitch": 120}, "pitch must be 0..99"),
    ],
)
def test_bad_requests(kwargs, message):
    with pytest.raises(ValueError, match=message):
        synthesize("one", **kwargs)
    with pytest.raises(ValueError, match="non-empty string"):
        synthesize("  ")


def test_concurrent_calls_are_serialised_and_unchanged():
    words = ["zero", "one", "two", "three", "four", "five"]
    expected = [synthesize(w, "en-us+m3") for w in words]
    results: dict[int, torch.Tensor] = {}
    errors: list[BaseException] = []

    def speak(i: int) -> None:
        try:
            results[i] = synthesize(words[i % len(words)], "en-us+m3")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=speak, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert all(torch.equal(results[i], expected[i % len(words)]) for i in range(12))
