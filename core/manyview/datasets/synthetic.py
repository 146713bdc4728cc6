"""A small offline multi-modal dataset for tests, demos and quick experiments."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset


class SyntheticModalities(Dataset):
    """Class-structured vectors in several modalities, made from a seed (no files).

    Each sample has a class y; every modality m sees the class's latent prototype through its
    own fixed random two-layer map plus Gaussian noise, so the modalities share the class
    structure but no modality is a copy of another. Items are dicts
    ``{"<modality>": float tensor (dim,), "label": int, "index": int}``.

    Args:
        modalities: modality name -> vector size (default ``{"a": 16, "b": 24}``).
        num_samples: dataset size.
        num_classes: number of classes.
        latent_dim: size of the shared latent space.
        noise: standard deviation of each modality's noise.
        seed: makes the whole dataset.
        split: ``"train"`` or ``"test"`` (another noise draw of the same classes and maps).
    """

    def __init__(
        self,
        modalities: Mapping[str, int] | None = None,
        *,
        num_samples: int = 512,
        num_classes: int = 8,
        latent_dim: int = 8,
        noise: float = 0.3,
        seed: int = 0,
        split: str = "train",
    ) -> None:
        modalities = dict(modalities or {"a": 16, "b": 24})
        if not modalities or any(not isinstance(d, int) or d < 1 for d in modalities.values()):
            raise ValueError(
                f"synthetic: modalities must map names to positive sizes, got {modalities}"
            )
        if num_samples < 2 or num_classes < 2:
            raise ValueError("synthetic: need num_samples >= 2 and num_classes >= 2")
        if split not in ("train", "test"):
            raise ValueError(f"synthetic: split must be 'train' or 'test', got {split!r}")
        g = torch.Generator().manual_seed(seed)
        prototypes = torch.randn(num_classes, latent_dim, generator=g) * 2.0
        maps = {
            name: (
                torch.randn(latent_dim, 2 * dim, generator=g) / latent_dim**0.5,
                torch.randn(2 * dim, dim, generator=g) / (2 * dim) ** 0.5,
            )
            for name, dim in modalities.items()
        }
        g_split = torch.Generator().manual_seed(seed * 1000 + (1 if split == "test" else 0) + 17)
        self.labels = torch.randint(0, num_classes, (num_samples,), generator=g_split)
        latent = prototypes[self.labels] + 0.5 * torch.randn(
            num_samples, latent_dim, generator=g_split
        )
        self.data: dict[str, Tensor] = {}
        for name, (w1, w2) in maps.items():
            x = torch.tanh(latent @ w1) @ w2
            self.data[name] = x + noise * torch.randn(x.shape, generator=g_split)
        self.modalities = modalities
        self.num_classes = num_classes

    def __len__(self) -> int:
        return len(self.labels)

    def get_batch(self, indices: list[int]) -> dict[str, Any]:
        """The collated batch of ``indices`` at once (what ``default_collate`` would give)."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        batch: dict[str, Any] = {name: x[idx] for name, x in self.data.items()}
        batch["label"] = self.labels[idx]
        batch["index"] = idx
        return batch

    def __getitem__(self, i: int) -> dict[str, Any]:
        item: dict[str, Any] = {name: x[i] for name, x in self.data.items()}
        item["label"] = int(self.labels[i])
        item["index"] = int(i)
        return item
