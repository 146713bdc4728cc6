"""Contract checks of views: the batch size is kept, seeded calls repeat, example inputs."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from manyview.testing.examples import build

__all__ = ["ViewContractTests", "check_view"]


def check_view(view: Any, n: int = 4) -> None:
    """A view keeps the batch size (times ``view.copies_per_input`` for a view that expands
    each input into several rows, such as ``rotation``), is deterministic under a seeded
    generator, and makes its own example inputs (``view.example_inputs(n, generator=...)``)."""
    assert hasattr(view, "example_inputs"), "a view must provide example_inputs(n, generator=...)"
    x = view.example_inputs(n, generator=torch.Generator().manual_seed(0))
    a = view(x, generator=torch.Generator().manual_seed(1))
    b = view(x, generator=torch.Generator().manual_seed(1))
    first = _batch_part(a)
    rows = n * getattr(view, "copies_per_input", 1)
    assert len(first) == rows, f"the view changed the batch size from {rows} to {len(first)}"
    if isinstance(a, Tensor):
        assert torch.equal(a, b), "the view is not deterministic under a seeded generator"
        assert torch.isfinite(a).all() if a.is_floating_point() else True, "non-finite output"
    elif _is_text_batch(a):
        assert a == b, "the view is not deterministic under a seeded generator"


def _is_text_batch(out: Any) -> bool:
    """A batch of text: a list or tuple of strings (what default_collate makes of them)."""
    return isinstance(out, list | tuple) and all(isinstance(s, str) for s in out)


def _batch_part(out: Any) -> Any:
    """What the batch size is read from: the tensor, a dict's first value, a text batch
    itself, or the first item of a tuple/list of batch parts."""
    if isinstance(out, Tensor) or _is_text_batch(out):
        return out
    if isinstance(out, dict):
        return next(iter(out.values()))
    return out[0]


class ViewContractTests:
    """pytest mixin: set ``name`` (a registered view) and optionally ``kwargs``."""

    name: str = ""
    kwargs: dict[str, Any] = {}  # noqa: RUF012

    def test_view_contract(self) -> None:
        check_view(build("view", self.name, **self.kwargs))
