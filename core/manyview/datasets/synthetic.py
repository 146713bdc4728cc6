"""A small offline multi-modal dataset for tests, demos and quick experiments."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from manyview.datasets.columns import ColumnDataset

WORDS = ("amber", "birch", "cedar", "dune", "ember", "fjord", "grove", "heath", "inlet", "jade")
TEXT_FORMS = ("{}", "a {}", "the {} one", "{} again")


def _word(label: int) -> str:
    return WORDS[label % len(WORDS)] + ("" if label < len(WORDS) else str(label // len(WORDS)))


def _valid(spec: Any) -> bool:
    if spec == "text":
        return True
    if isinstance(spec, int) and not isinstance(spec, bool):
        return spec >= 1
    return (
        isinstance(spec, Sequence)
        and not isinstance(spec, str)
        and len(spec) > 0
        and all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in spec)
    )


class SyntheticModalities(ColumnDataset):
    """Class-structured data in several modalities, made from a seed (no files).

    Each sample has a class y; every modality m sees the class's latent prototype through its
    own fixed random two-layer map plus Gaussian noise, so the modalities share the class
    structure but no modality is a copy of another. Items are dicts
    ``{"<modality>": data, "label": int, "index": int}``.

    A modality is a vector (``a = 16``: float ``(16,)``), a tensor of any shape (``image =
    [1, 8, 8]``: float ``(1, 8, 8)`` — images for image encoders, ``audio = [4000]`` a
    waveform), or text (``caption = "text"``: a short string naming the class in one of a
    few forms), so every recipe's contract test can run offline in seconds.

    Args:
        modalities: modality name -> size, shape or ``"text"`` (default ``{"a": 16, "b": 24}``).
        num_samples: dataset size.
        num_classes: number of classes.
        latent_dim: size of the shared latent space.
        noise: standard deviation of each modality's noise.
        seed: makes the whole dataset.
        split: ``"train"`` or ``"test"`` (another noise draw of the same classes and maps).
    """

    def __init__(
        self,
        modalities: Mapping[str, int | Sequence[int] | str] | None = None,
        *,
        num_samples: int = 512,
        num_classes: int = 8,
        latent_dim: int = 8,
        noise: float = 0.3,
        seed: int = 0,
        split: str = "train",
    ) -> None:
        modalities = dict(modalities or {"a": 16, "b": 24})
        if not modalities or not all(_valid(d) for d in modalities.values()):
            raise ValueError(
                "synthetic: modalities must map names to a positive size (16), a shape "
                f'([1, 8, 8]) or "text", got {modalities}'
            )
        if num_samples < 2 or num_classes < 2:
            raise ValueError("synthetic: need num_samples >= 2 and num_classes >= 2")
        if split not in ("train", "test"):
            raise ValueError(f"synthetic: split must be 'train' or 'test', got {split!r}")
        g = torch.Generator().manual_seed(seed)
        prototypes = torch.randn(num_classes, latent_dim, generator=g) * 2.0
        maps = {}
        for name, spec in modalities.items():
            if spec == "text":
                continue
            dim = spec if isinstance(spec, int) else math.prod(spec)
            hidden = 2 * dim if isinstance(spec, int) else 16
            maps[name] = (
                torch.randn(latent_dim, hidden, generator=g) / latent_dim**0.5,
                torch.randn(hidden, dim, generator=g) / hidden**0.5,
            )
        g_split = torch.Generator().manual_seed(seed * 1000 + (1 if split == "test" else 0) + 17)
        self.labels = torch.randint(0, num_classes, (num_samples,), generator=g_split)
        latent = prototypes[self.labels] + 0.5 * torch.randn(
            num_samples, latent_dim, generator=g_split
        )
        self.data: dict[str, Any] = {}
        for name, spec in modalities.items():
            if spec == "text":
                forms = torch.randint(0, len(TEXT_FORMS), (num_samples,), generator=g_split)
                self.data[name] = [
                    TEXT_FORMS[int(f)].format(_word(int(y))) for f, y in zip(forms, self.labels)
                ]
                continue
            w1, w2 = maps[name]
            x = torch.tanh(latent @ w1) @ w2
            x = x + noise * torch.randn(x.shape, generator=g_split)
            self.data[name] = x if isinstance(spec, int) else x.reshape(num_samples, *spec)
        self.modalities = modalities
        self.num_classes = num_classes
