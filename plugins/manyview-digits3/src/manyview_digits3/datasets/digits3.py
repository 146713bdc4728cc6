"""``digits3``: digits as images, speech and text, built offline and deterministically.

* **image** -- scikit-learn's ``load_digits`` (1,797 8x8 scans), float in [0, 1], ``(1, 8, 8)``.
* **audio** -- each digit word spoken by eSpeak NG (``manyview_speech.synthesis``) in many
  voice variants: language voices x timbre variants x renditions (each rendition its own
  speaking rate and pitch), trimmed, centred in ``clip_seconds``, resampled to 16 kHz, with
  additive white noise at a random SNR.
* **text** -- the digit in several forms: ``"seven"``, ``"7"``, ``"the number seven"``,
  ``"sette"`` (Italian).

A sample is one image with a clip and a text of the same class (aligned by class, not by
instance). Train and test are split by image (a stratified share of each class) **and** by
voice: the last ``test_variants`` timbre variants (in every language voice) speak only in
the test split, so test speech comes from voices never trained on.

Building uses manyview-speech's eSpeak NG synthesis and takes a few seconds; the result
is cached under ``<root>/digits3/`` (``root``: ``$MANYVIEW_DATA`` or ``~/.cache/manyview``)
as an ``.npz`` with a JSON manifest (format version, options, content hash). A cached entry
is reused; a stale or corrupt one is rebuilt with a warning. Reading the cache needs only
numpy and torch. Build it ahead with ``manyview data build digits3 [--root DIR]``.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from manyview.benchmarks.prompts import DIGIT_NAMES
from manyview.datasets.cache import data_root, entry_key, read_entry, write_entry

__all__ = ["ITALIAN", "WORDS", "Digits3", "build_digits3", "text_forms"]

VERSION = 1
"""The cache format and build recipe; bump it when either changes (old entries are rebuilt)."""

WORDS: tuple[str, ...] = DIGIT_NAMES
"""The digits' names in label order (:data:`manyview.benchmarks.prompts.DIGIT_NAMES`)."""
ITALIAN: tuple[str, ...] = (
    "zero", "uno", "due", "tre", "quattro", "cinque", "sei", "sette", "otto", "nove",
)  # fmt: skip
DIALECTS: tuple[str, ...] = ("en-us", "en", "en-gb-scotland", "en-029")
"""American, British, Scottish and Caribbean English (eSpeak language voices)."""
VARIANTS: tuple[str, ...] = ("m1", "m3", "m5", "f1", "f4", "Alex", "klatt", "croak", "m2", "f2")
"""Timbre variants; the last ``test_variants`` of them are the held-out (test) voices."""


def text_forms(digit: int) -> list[str]:
    """The text forms of ``digit``: word, numeral, phrase, Italian word."""
    word = WORDS[digit]
    return [word, str(digit), f"the number {word}", ITALIAN[digit]]


def _speech() -> tuple[Any, Any]:
    try:
        from manyview_speech import audio, synthesis
    except ImportError as exc:
        raise ImportError(
            "digits3: building the speech part needs manyview-speech, a dependency of "
            f"manyview-digits3 (pip install manyview-digits3 installs it); import failed: {exc}"
        ) from None
    return synthesis, audio


def _make(opts: dict[str, Any]) -> dict[str, Any]:
    """All arrays of a build (both splits)."""
    import numpy as np
    from sklearn.datasets import load_digits

    synthesis, audio = _speech()
    g = torch.Generator().manual_seed(opts["seed"])

    # images: a seeded subset, then a stratified split by image
    digits = load_digits()
    images = torch.from_numpy(digits.images.astype(np.float32) / 16.0).unsqueeze(1)
    targets = torch.from_numpy(digits.target.astype(np.int64))
    order = torch.randperm(len(targets), generator=g)
    if opts["max_images"] is not None:
        order = order[: opts["max_images"]]
    image_split = torch.zeros(len(targets), dtype=torch.int8) - 1  # -1 unused, 0 train, 1 test
    for c in range(10):
        of_class = order[targets[order] == c]
        n_test = min(len(of_class) - 1, max(1, round(len(of_class) * opts["test_fraction"])))
        image_split[of_class[:n_test]] = 1
        image_split[of_class[n_test:]] = 0

    # speech: words x dialects x variants x renditions, each rendition its own rate and pitch
    dialects, variants = opts["dialects"], opts["variants"]
    n_voice = len(dialects) * len(variants) * opts["renditions"]
    rates = torch.randint(opts["rate"][0], opts["rate"][1] + 1, (n_voice,), generator=g)
    pitches = torch.randint(opts["pitch"][0], opts["pitch"][1] + 1, (n_voice,), generator=g)
    native = max(1, round(opts["clip_seconds"] * synthesis.NATIVE_SAMPLE_RATE))
    voice_names, voice_test = [], []
    for d in dialects:
        for k, v in enumerate(variants):
            for r in range(opts["renditions"]):
                voice_names.append(f"{d}+{v}#{r}")
                voice_test.append(k >= len(variants) - opts["test_variants"])
    clips, clip_label, clip_voice = [], [], []
    for digit, word in enumerate(WORDS):
        for i, name in enumerate(voice_names):
            wave = synthesis.synthesize(
                word,
                name.partition("#")[0],
                rate=int(rates[i]),
                pitch=int(pitches[i]),
                seed=opts["seed"],
            )
            clips.append(audio.fit_length(audio.trim_silence(wave), native, align="center"))
            clip_label.append(digit)
            clip_voice.append(i)
    waves = audio.resample(torch.stack(clips), synthesis.NATIVE_SAMPLE_RATE, opts["sample_rate"])
    waves = waves[:, : max(1, round(opts["clip_seconds"] * opts["sample_rate"]))]
    # additive white noise at a per-clip SNR drawn from snr_db
    lo, hi = opts["snr_db"]
    snr = lo + (hi - lo) * torch.rand(len(waves), 1, generator=g)
    power = waves.pow(2).mean(dim=1, keepdim=True).clamp_min(1e-8)
    noise = torch.randn(waves.shape, generator=g) * (power / 10 ** (snr / 10)).sqrt()
    waves = (waves + noise).clamp(-1.0, 1.0)
    pcm = (waves * 32767.0).round().to(torch.int16)
    clip_label_t = torch.tensor(clip_label)
    clip_split = torch.tensor([int(voice_test[v]) for v in clip_voice])

    arrays: dict[str, Any] = {
        "images": images.numpy(),
        "targets": targets.numpy(),
        "clips": pcm.numpy(),
        "clip_label": clip_label_t.numpy(),
        "clip_voice": np.asarray(clip_voice, dtype=np.int64),
        "voice_names": np.asarray(voice_names),
        "voice_test": np.asarray(voice_test, dtype=bool),
    }
    # align: each image of a split gets a clip (of that split's voices) and a text of its class
    for s, split in enumerate(("train", "test")):
        idx = torch.nonzero(image_split == s).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        clip_of = torch.empty(len(idx), dtype=torch.long)
        text_of = torch.empty(len(idx), dtype=torch.long)
        for c in range(10):
            rows = torch.nonzero(targets[idx] == c).flatten()
            pool = torch.nonzero((clip_label_t == c) & (clip_split == s)).flatten()
            if len(rows) == 0:
                continue
            picks = torch.cat(
                [
                    pool[torch.randperm(len(pool), generator=g)]
                    for _ in range(-(-len(rows) // len(pool)))
                ]
            )
            clip_of[rows] = picks[: len(rows)]
            text_of[rows] = (torch.arange(len(rows)) + torch.randint(0, 4, (1,), generator=g)) % 4
        arrays[f"{split}_image"] = idx.numpy()
        arrays[f"{split}_clip"] = clip_of.numpy()
        arrays[f"{split}_text"] = text_of.numpy()
    return arrays


def build_digits3(
    root: str | os.PathLike[str] | None = None,
    *,
    force: bool = False,
    dialects: Sequence[str] = DIALECTS,
    variants: Sequence[str] = VARIANTS,
    test_variants: int = 2,
    renditions: int = 2,
    max_images: int | None = None,
    test_fraction: float = 0.2,
    sample_rate: int = 16000,
    clip_seconds: float = 1.0,
    snr_db: Sequence[float] = (10.0, 30.0),
    rate: Sequence[int] = (120, 180),
    pitch: Sequence[int] = (25, 75),
    seed: int = 0,
) -> dict[str, Any]:
    """Build (or find) the cached ``digits3`` entry.

    Returns a dict: ``path`` (the ``.npz``), ``built`` (``False`` when a valid cache was
    reused), ``reason`` (why an existing entry was rebuilt, else ``""``), ``seconds`` and
    ``arrays`` (the loaded arrays). Options: see :class:`Digits3`.
    """
    dialects, variants = [str(d) for d in dialects], [str(v) for v in variants]
    if not dialects or not variants:
        raise ValueError("digits3: dialects and variants must be non-empty")
    if not 1 <= test_variants < len(variants):
        raise ValueError(
            f"digits3: test_variants must be 1..{len(variants) - 1} (of {len(variants)} "
            f"variants), got {test_variants}"
        )
    if renditions < 1:
        raise ValueError(f"digits3: renditions must be >= 1, got {renditions}")
    if max_images is not None and not max_images >= 20:
        raise ValueError(f"digits3: max_images must be >= 20 (two a class), got {max_images}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"digits3: test_fraction must be in (0, 1), got {test_fraction}")
    if sample_rate < 1000 or clip_seconds <= 0:
        raise ValueError("digits3: need sample_rate >= 1000 and clip_seconds > 0")
    opts = {
        "dialects": dialects,
        "variants": variants,
        "test_variants": int(test_variants),
        "renditions": int(renditions),
        "max_images": None if max_images is None else int(max_images),
        "test_fraction": float(test_fraction),
        "sample_rate": int(sample_rate),
        "clip_seconds": float(clip_seconds),
        "snr_db": [float(snr_db[0]), float(snr_db[-1])],
        "rate": [int(rate[0]), int(rate[-1])],
        "pitch": [int(pitch[0]), int(pitch[-1])],
        "seed": int(seed),
    }
    folder = data_root(root) / "digits3"
    key = entry_key(opts, VERSION)
    start = time.perf_counter()
    arrays, reason = (None, "") if force else read_entry(folder, key, opts, VERSION)
    if arrays is not None:
        path, built, reason = folder / f"{key}.npz", False, ""
    else:
        if reason:
            warnings.warn(
                f"digits3: the cache entry in {folder} is not usable ({reason}); rebuilding it",
                stacklevel=3,
            )
        arrays = _make(opts)
        info = {
            "dataset": "digits3",
            "train": len(arrays["train_image"]),
            "test": len(arrays["test_image"]),
            "clips": len(arrays["clips"]),
            "voices": len(arrays["voice_names"]),
            "test_voices": int(arrays["voice_test"].sum()),
        }
        path = write_entry(folder, key, arrays, opts, VERSION, info)
        built, reason = True, reason or ("forced" if force else "")
    return {
        "path": path,
        "built": built,
        "reason": reason,
        "seconds": time.perf_counter() - start,
        "arrays": arrays,
    }


class Digits3(Dataset):
    """Tri-modal digits: ``image`` (1, 8, 8), ``audio`` (samples,) at 16 kHz, ``text``.

    Items: ``{"image": float32 (1, 8, 8) in [0, 1], "audio": float32 (samples,) in [-1, 1],
    "text": str, "label": int (the digit), "index": int}``. :meth:`get_batch` gives a whole
    collated batch at once (``text`` as a list of strings).

    Useful attributes: :attr:`classes` (the digit words), :attr:`class_texts` (every text
    form of each class, for zero-shot prompts), :attr:`voices` (the voice id of each
    sample's clip) and :attr:`voice_names` (``"en-us+f2#0"``: language voice + variant,
    rendition).

    Args:
        split: ``"train"`` or ``"test"``.
        root: the cache root (``$MANYVIEW_DATA`` or ``~/.cache/manyview`` by default).
        dialects: eSpeak language voices.
        variants: eSpeak timbre variants; the last ``test_variants`` are test-only voices.
        test_variants: how many variants to hold out for the test split.
        renditions: renditions per (language voice, variant), each with its own rate and
            pitch drawn from ``rate`` and ``pitch``.
        max_images: use only this many images (a seeded subset; ``None``: all 1,797).
        test_fraction: the share of each class's images in the test split.
        sample_rate: the clips' rate (Hz).
        clip_seconds: the clips' fixed length (silence-trimmed words, centred, padded).
        snr_db: the range of signal-to-noise ratios of the additive white noise.
        rate: speaking rates (words per minute), lowest and highest.
        pitch: base pitches (0..99), lowest and highest.
        seed: fixes everything random.
        rebuild: build afresh even when a valid cache entry exists.
    """

    def __init__(
        self,
        split: str = "train",
        root: str | os.PathLike[str] | None = None,
        *,
        dialects: Sequence[str] = DIALECTS,
        variants: Sequence[str] = VARIANTS,
        test_variants: int = 2,
        renditions: int = 2,
        max_images: int | None = None,
        test_fraction: float = 0.2,
        sample_rate: int = 16000,
        clip_seconds: float = 1.0,
        snr_db: Sequence[float] = (10.0, 30.0),
        rate: Sequence[int] = (120, 180),
        pitch: Sequence[int] = (25, 75),
        seed: int = 0,
        rebuild: bool = False,
    ) -> None:
        if split not in ("train", "test"):
            raise ValueError(f"digits3: split must be 'train' or 'test', got {split!r}")
        result = build_digits3(
            root,
            force=rebuild,
            dialects=dialects,
            variants=variants,
            test_variants=test_variants,
            renditions=renditions,
            max_images=max_images,
            test_fraction=test_fraction,
            sample_rate=sample_rate,
            clip_seconds=clip_seconds,
            snr_db=snr_db,
            rate=rate,
            pitch=pitch,
            seed=seed,
        )
        a = result["arrays"]
        self.path: Path = result["path"]
        self.split = split
        self.sample_rate = int(sample_rate)
        image_idx = torch.from_numpy(a[f"{split}_image"]).long()
        self.images: Tensor = torch.from_numpy(a["images"])[image_idx].contiguous()
        self.labels: Tensor = torch.from_numpy(a["targets"])[image_idx].long()
        self.image_ids: Tensor = image_idx  # position in load_digits
        self.clip_ids: Tensor = torch.from_numpy(a[f"{split}_clip"]).long()
        used = torch.unique(self.clip_ids)
        remap = torch.full((len(a["clips"]),), -1, dtype=torch.long)
        remap[used] = torch.arange(len(used))
        self.clips: Tensor = torch.from_numpy(a["clips"])[used].to(torch.float32) / 32767.0
        self._clip_row = remap[self.clip_ids]
        self.voice_names: list[str] = [str(v) for v in a["voice_names"]]
        self.voices: Tensor = torch.from_numpy(a["clip_voice"]).long()[self.clip_ids]
        self.text_forms_idx: Tensor = torch.from_numpy(a[f"{split}_text"]).long()
        self.classes: list[str] = list(WORDS)
        self.class_texts: list[list[str]] = [text_forms(c) for c in range(10)]
        self.texts: list[str] = [
            self.class_texts[y][f]
            for y, f in zip(self.labels.tolist(), self.text_forms_idx.tolist(), strict=True)
        ]
        self.num_classes = 10
        self.modalities = ("image", "audio", "text")
        # For the benchmarks: zero-shot prompts in the forms the text side trains on, and the
        # modalities of one sample share a class, not an instance (no instance-level pairs).
        self.class_names: list[str] = list(WORDS)
        self.prompt_templates: tuple[str, ...] = ("{}", "the number {}")
        self.paired = False

    build = staticmethod(build_digits3)
    """Build or find the cache without loading a split (``manyview data build digits3``)."""

    def __len__(self) -> int:
        return len(self.labels)

    def get_batch(self, indices: Sequence[int]) -> dict[str, Any]:
        """The collated batch of ``indices`` at once (what ``default_collate`` would give)."""
        idx = torch.as_tensor(list(indices), dtype=torch.long)
        return {
            "image": self.images[idx],
            "audio": self.clips[self._clip_row[idx]],
            "text": [self.texts[i] for i in idx.tolist()],
            "label": self.labels[idx],
            "index": idx,
        }

    def __getitem__(self, i: int) -> dict[str, Any]:
        i = int(i)
        if not -len(self) <= i < len(self):
            raise IndexError(f"digits3: index {i} out of range for {len(self)} samples")
        i %= len(self)
        return {
            "image": self.images[i],
            "audio": self.clips[self._clip_row[i]],
            "text": self.texts[i],
            "label": int(self.labels[i]),
            "index": i,
        }
