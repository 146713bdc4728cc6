"""A dataset held as columns, one per modality: the sample and batch protocol written once.

:class:`ColumnDataset` gives ``len``, ``dataset[i]`` and ``get_batch(indices)`` to a dataset
that keeps ``data`` (modality -> a tensor ``(N, ...)`` or a list of N items, e.g. strings)
and ``labels`` ``(N,)``; the ``synthetic`` and ``manifest`` datasets are two.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

__all__ = ["ColumnDataset"]


class ColumnDataset(Dataset):
    """Base of the datasets held as columns. A subclass sets, in its constructor:

    Attributes:
        data: modality -> a tensor ``(N, ...)`` or a list of N items (texts).
        labels: a long tensor ``(N,)``.

    Items: ``{"<modality>": data[m][i], ..., "label": int, "index": i}``; :meth:`get_batch`
    gives what ``default_collate`` makes of them (lists stay lists).
    """

    data: dict[str, Tensor | list[Any]]
    labels: Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def get_batch(self, indices: Sequence[int]) -> dict[str, Any]:
        """The collated batch of ``indices`` at once (list columns as lists)."""
        idx = torch.as_tensor(list(indices), dtype=torch.long)
        batch: dict[str, Any] = {
            name: [values[i] for i in idx.tolist()] if isinstance(values, list) else values[idx]
            for name, values in self.data.items()
        }
        batch["label"] = self.labels[idx]
        batch["index"] = idx
        return batch

    def __getitem__(self, i: int) -> dict[str, Any]:
        item: dict[str, Any] = {name: values[i] for name, values in self.data.items()}
        item["label"] = int(self.labels[i])
        item["index"] = int(i)
        return item
