"""``digits``: scikit-learn's 1,797 real handwritten digits as images, offline.

The scans (``sklearn.datasets.load_digits``: 8×8, 17 grey levels, 10 classes, shipped with
scikit-learn) are scaled to [0, 1] and, with ``size`` other than 8, resized bilinearly
(antialiased) to ``size × size``: a network with down-sampling stages needs 16×16. A sample
is ``{"image": (channels, size, size) float32 in [0, 1], "label": int, "index": int}``.

Train and test are a stratified split by image: in each class a seeded shuffle, then the
first ``test_fraction`` of it (at least one) is the test split. Building takes milliseconds
and needs no cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from manyview.benchmarks.prompts import DIGIT_NAMES
from manyview.options import check_choice, check_fraction, check_int

__all__ = ["Digits", "digit_images"]

SPLITS = ("train", "test", "all")


def digit_images(size: int = 8) -> tuple[Tensor, Tensor]:
    """All 1,797 digits: images ``(1797, 1, size, size)`` float32 in [0, 1] and labels
    ``(1797,)`` int64, in scikit-learn's order."""
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    size = check_int(size, "size", "digits")
    data = load_digits()
    images = torch.as_tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    if size != 8:
        images = F.interpolate(
            images, size=(size, size), mode="bilinear", align_corners=False, antialias=size < 8
        ).clamp_(0.0, 1.0)
    return images, torch.as_tensor(data.target, dtype=torch.long)


class Digits(Dataset):
    """scikit-learn's digits as ``image`` samples (module docstring).

    Args:
        split (`str`, defaults to ``"train"``): ``"train"``, ``"test"`` or ``"all"``.
        size (`int`, defaults to ``8``): the side of the images.
        channels (`int`, defaults to ``1``): the grey channel repeated (3 for RGB networks).
        test_fraction (`float`, defaults to ``0.2``): the share of each class held out.
        seed (`int`, defaults to ``0``): the split's shuffle.
        limit (`int`, *optional*): keep the first ``limit`` samples of the split (a smaller
            run), in a class-balanced order.

    Attributes:
        class_names: the digits' names, ``"zero"`` ... ``"nine"``.
        num_classes: 10.
        images, labels: the split's tensors, ``(N, channels, size, size)`` and ``(N,)``.
        source_index: ``(N,)``, each sample's position in scikit-learn's order.
    """

    class_names: tuple[str, ...] = DIGIT_NAMES
    num_classes = 10

    def __init__(
        self,
        split: str = "train",
        *,
        size: int = 8,
        channels: int = 1,
        test_fraction: float = 0.2,
        seed: int = 0,
        limit: int | None = None,
    ) -> None:
        who = "digits"
        self.split = check_choice(split, SPLITS, "split", who)
        self.size = check_int(size, "size", who)
        self.channels = check_int(channels, "channels", who)
        check_fraction(test_fraction, "test_fraction", who)
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"{who}: test_fraction must lie in (0, 1), got {test_fraction}")
        seed = check_int(seed, "seed", who, least=0)
        images, labels = digit_images(self.size)
        order = self._split_order(labels, float(test_fraction), seed)
        if limit is not None:
            limit = check_int(limit, "limit", who)
            order = order[:limit]
        self.images = images[order].repeat(1, self.channels, 1, 1).contiguous()
        self.labels = labels[order].contiguous()
        self.source_index = order

    def _split_order(self, labels: Tensor, test_fraction: float, seed: int) -> Tensor:
        """The split's indices, classes interleaved (so a prefix is class-balanced)."""
        g = torch.Generator().manual_seed(seed)
        parts: list[Tensor] = []
        for c in range(self.num_classes):
            of_class = torch.nonzero(labels == c).flatten()
            of_class = of_class[torch.randperm(len(of_class), generator=g)]
            n_test = min(len(of_class) - 1, max(1, round(len(of_class) * test_fraction)))
            if self.split == "test":
                parts.append(of_class[:n_test])
            elif self.split == "train":
                parts.append(of_class[n_test:])
            else:
                parts.append(of_class)
        width = max(len(p) for p in parts)
        rows = [torch.cat([p, p.new_full((width - len(p),), -1)]) for p in parts]
        order = torch.stack(rows, dim=1).flatten()  # class-interleaved, -1 for the gaps
        return order[order >= 0]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"image": self.images[i], "label": int(self.labels[i]), "index": int(i)}

    def get_batch(self, indices: Sequence[int]) -> dict[str, Tensor]:
        """What ``default_collate`` makes of ``[self[i] for i in indices]``, by indexing."""
        idx = torch.as_tensor(list(indices), dtype=torch.long)
        return {"image": self.images[idx], "label": self.labels[idx], "index": idx}
