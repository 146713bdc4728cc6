"""Spoken words synthesised offline with eSpeak NG: words x dialects x voice variants."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
from torch import Tensor

from manyview.benchmarks.prompts import DIGIT_NAMES
from manyview.datasets.columns import ColumnDataset
from manyview_speech.audio import fit_length, resample, trim_silence
from manyview_speech.synthesis import NATIVE_SAMPLE_RATE, synthesize

DIGITS: tuple[str, ...] = DIGIT_NAMES
"""The default vocabulary: :data:`manyview.benchmarks.prompts.DIGIT_NAMES`."""
DIALECTS: tuple[str, ...] = ("en-us", "en", "en-gb-scotland", "en-029")
"""American, British (RP), Scottish and Caribbean English: eSpeak's phonology and
intonation differ between them, so they stand in for language varieties."""
VARIANTS: tuple[str, ...] = ("m1", "m3", "f1", "f4", "klatt", "Alex", "f3", "croak")
"""Voice variants (eSpeak's ``!v`` folder): male, female and formant-synthesis timbres."""

LABELS = ("word", "speaker", "dialect")


@functools.lru_cache(maxsize=8192)
def _clip(text: str, voice: str, rate: int, pitch: int, seed: int) -> Tensor:
    """One word at eSpeak's rate, trimmed of silence (cached: the splits share clips)."""
    return trim_silence(synthesize(text, voice, rate=rate, pitch=pitch, seed=seed))


class SpokenWords(ColumnDataset):
    """Words spoken by many synthetic voices, labelled by word, speaker or dialect.

    A voice is a dialect with a variant (``"en-gb-scotland+f3"``); each (word, voice) pair is
    spoken ``repeats`` times at a rate and pitch drawn from ``rate`` and ``pitch`` (fixed by
    ``seed``). Clips are trimmed of silence, resampled and centred in ``clip_seconds``.
    Clips are cached in the process.

    The test split holds out voices (``split_by="voice"``: the last ``test_variants``
    variants, in every dialect) or words (``split_by="word"``: the last ``test_words``
    words), so train and test never share a (word, voice) pair.

    Items: ``{"audio": float32 (samples,), "text": the word, "label": int, "index": int}``.
    The other label kinds of every item are in :attr:`words`, :attr:`speakers` and
    :attr:`dialects`.

    Args:
        words: the vocabulary.
        dialects: eSpeak language voices.
        variants: eSpeak voice variants.
        split: ``"train"``, ``"test"`` or ``"all"``.
        label: what ``label`` is: ``"word"`` (keyword spotting), ``"speaker"`` (a dialect +
            variant) or ``"dialect"`` (language-variety identification).
        split_by: ``"voice"`` or ``"word"`` (default: ``"word"`` for speaker labels, which
            need the same speakers in both splits, else ``"voice"``).
        test_variants: variants held out when splitting by voice.
        test_words: words held out when splitting by word.
        repeats: renditions of each (word, voice) pair.
        rate: the range of speaking rates (words per minute).
        pitch: the range of base pitches (0..99).
        sample_rate: the clips' rate in Hz.
        clip_seconds: the clips' length.
        seed: fixes rates and pitches (and eSpeak's random generator).
    """

    def __init__(
        self,
        words: Sequence[str] = DIGITS,
        dialects: Sequence[str] = DIALECTS,
        variants: Sequence[str] = VARIANTS,
        *,
        split: str = "train",
        label: str = "word",
        split_by: str | None = None,
        test_variants: int = 2,
        test_words: int = 3,
        repeats: int = 1,
        rate: Sequence[int] = (130, 170),
        pitch: Sequence[int] = (35, 65),
        sample_rate: int = 16000,
        clip_seconds: float = 1.0,
        seed: int = 0,
    ) -> None:
        words, dialects, variants = tuple(words), tuple(dialects), tuple(variants)
        if split not in ("train", "test", "all"):
            raise ValueError(f"spoken_words: split must be 'train', 'test' or 'all', got {split!r}")
        if label not in LABELS:
            raise ValueError(f"spoken_words: label must be one of {LABELS}, got {label!r}")
        split_by = split_by or ("word" if label == "speaker" else "voice")
        if split_by not in ("voice", "word"):
            raise ValueError(f"spoken_words: split_by must be 'voice' or 'word', got {split_by!r}")
        if label == "speaker" and split_by == "voice" and split != "all":
            raise ValueError(
                "spoken_words: speaker labels need the same speakers in train and test; "
                "use split_by='word'"
            )
        if label == "word" and split_by == "word" and split != "all":
            raise ValueError(
                "spoken_words: word labels need the same words in train and test; "
                "use split_by='voice'"
            )
        if not words or not dialects or not variants or repeats < 1:
            raise ValueError(
                "spoken_words: words, dialects and variants must be non-empty, repeats >= 1"
            )
        held = test_variants if split_by == "voice" else test_words
        pool = len(variants) if split_by == "voice" else len(words)
        if split != "all" and not 1 <= held < pool:
            raise ValueError(
                f"spoken_words: hold out between 1 and {pool - 1} "
                f"{'variants' if split_by == 'voice' else 'words'}, got {held}"
            )
        lo_rate, hi_rate = int(rate[0]), int(rate[-1])
        lo_pitch, hi_pitch = int(pitch[0]), int(pitch[-1])
        g = torch.Generator().manual_seed(seed)
        shape = (len(words), len(dialects), len(variants), repeats)
        rates = torch.randint(lo_rate, hi_rate + 1, shape, generator=g)
        pitches = torch.randint(lo_pitch, hi_pitch + 1, shape, generator=g)
        native = max(1, round(clip_seconds * NATIVE_SAMPLE_RATE))

        audio, texts, word_ids, speaker_ids, dialect_ids = [], [], [], [], []
        for w, word in enumerate(words):
            for d, dialect in enumerate(dialects):
                for v, variant in enumerate(variants):
                    held_out = (
                        v >= len(variants) - test_variants
                        if split_by == "voice"
                        else w >= len(words) - test_words
                    )
                    if (split == "train" and held_out) or (split == "test" and not held_out):
                        continue
                    for r in range(repeats):
                        wave = _clip(
                            word,
                            f"{dialect}+{variant}",
                            int(rates[w, d, v, r]),
                            int(pitches[w, d, v, r]),
                            seed,
                        )
                        audio.append(fit_length(wave, native, align="center"))
                        texts.append(word)
                        word_ids.append(w)
                        speaker_ids.append(d * len(variants) + v)
                        dialect_ids.append(d)
        if not audio:
            raise ValueError(f"spoken_words: the {split} split is empty")
        # one batched resampling: much faster than one call per clip of its own length
        self.audio = resample(torch.stack(audio), NATIVE_SAMPLE_RATE, sample_rate)
        self.texts = texts
        self.data = {"audio": self.audio, "text": self.texts}  # the columns of the items
        self.words = torch.tensor(word_ids)
        self.speakers = torch.tensor(speaker_ids)
        self.dialects = torch.tensor(dialect_ids)
        self.labels = {"word": self.words, "speaker": self.speakers, "dialect": self.dialects}[
            label
        ]
        self.classes: list[str] = {
            "word": list(words),
            "speaker": [f"{d}+{v}" for d in dialects for v in variants],
            "dialect": list(dialects),
        }[label]
        self.num_classes = len(self.classes)
        self.sample_rate = sample_rate
        self.label_kind = label
