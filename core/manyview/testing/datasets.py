"""Contract checks for datasets (``docs/architecture.md``, "Dataset").

A dataset is what its factory returns: ``len(dataset) > 0`` samples, ``dataset[i]`` a mapping
modality -> raw data plus optional ``label`` (an integer class, or a number for regression)
and ``index`` (``i`` itself), every sample with the same keys; optionally ``get_batch(indices)``
returning what ``torch.utils.data.default_collate`` makes of those samples (a faster path the
trainer and benchmarks use), and attributes ``class_names``, ``prompt_templates``,
``paired``, ``num_classes`` that benchmarks read. Building it twice with the same options
gives the same samples (runs are reproducible and ``--resume`` is exact).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from numbers import Number
from typing import Any

import torch
from torch import Tensor

import manyview

__all__ = ["DatasetContractTests", "check_dataset", "check_dataset_determinism"]


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        a, b = torch.as_tensor(a), torch.as_tensor(b)
        return a.shape == b.shape and bool(torch.equal(a, b.to(a.dtype)))
    if isinstance(a, Mapping):
        return (
            isinstance(b, Mapping) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
        )
    if isinstance(a, list | tuple):
        return isinstance(b, list | tuple) and len(a) == len(b) and all(map(_equal, a, b))
    return a == b


def check_dataset(dataset: Any, n: int = 4) -> None:
    """The sample protocol on the first ``n`` samples (see the module docstring)."""
    from torch.utils.data import default_collate

    assert hasattr(dataset, "__len__") and len(dataset) > 0, "a dataset must have samples"
    n = min(n, len(dataset))
    samples = [dataset[i] for i in range(n)]
    first = samples[0]
    assert isinstance(first, Mapping), f"a sample must be a mapping, got {type(first).__name__}"
    modalities = [k for k in first if k not in ("label", "index")]
    assert modalities, "a sample must hold at least one modality besides label and index"
    for i, sample in enumerate(samples):
        assert set(sample) == set(first), (
            f"sample {i} has keys {sorted(sample)}, sample 0 {sorted(first)}"
        )
        if "label" in sample:
            label = sample["label"]
            assert isinstance(label, Number | Tensor) and not isinstance(label, bool), (
                f"sample {i}: label must be a number, got {type(label).__name__}"
            )
        if "index" in sample:
            assert int(sample["index"]) == i, f"sample {i} has index {sample['index']}"
    fetch = getattr(dataset, "get_batch", None)
    if fetch is not None:
        batch, want = fetch(list(range(n))), default_collate(samples)
        assert isinstance(batch, Mapping) and set(batch) == set(want), (
            f"get_batch gave keys {sorted(batch)}, the samples {sorted(want)}"
        )
        for key in want:
            assert _equal(batch[key], want[key]), f"get_batch's {key!r} differs from the samples'"


def check_dataset_determinism(make: Callable[[], Any], n: int = 4) -> None:
    """Two datasets built by ``make`` give the same first ``n`` samples."""
    a, b = make(), make()
    assert len(a) == len(b), f"two builds have {len(a)} and {len(b)} samples"
    for i in range(min(n, len(a))):
        assert _equal(a[i], b[i]), f"sample {i} differs between two builds with the same options"


class DatasetContractTests:
    """pytest mixin: set ``name`` (a registered dataset) and ``kwargs``, or override
    :meth:`make` (e.g. to write files into ``tmp_path`` first)."""

    name: str = ""
    kwargs: dict[str, Any] = {}  # noqa: RUF012 - a read-only class-level default

    def make(self, tmp_path: Any) -> Any:
        return manyview.create("dataset", self.name, **self.kwargs)

    def test_dataset_contract(self, tmp_path: Any) -> None:
        check_dataset(self.make(tmp_path))

    def test_dataset_is_deterministic(self, tmp_path: Any) -> None:
        check_dataset_determinism(lambda: self.make(tmp_path))
