"""The base classes of the image views: input checks, lists of batches, the per-sample
probability gate, example inputs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from manyview_vision import sampling
from manyview_vision.functional import check_images, to_float_images, update_rows


def pair(value: Any, name: str, who: str) -> tuple[float, float]:
    """A (low, high) pair of numbers with low <= high, or a ValueError."""
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2:
        raise ValueError(f"{who}: {name} must be a pair (low, high), got {value!r}")
    low, high = (float(v) for v in value)
    if not low <= high:
        raise ValueError(f"{who}: {name} must be (low, high) with low <= high, got {value!r}")
    return low, high


def probability(value: Any, name: str, who: str) -> float:
    """A number in [0, 1], or a ValueError."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"{who}: {name} must be a probability in [0, 1], got {value!r}")
    return float(value)


Params = dict[str, Any]
"""A view's random parameters for one batch: tensors with one row per sample."""


class ImageView(nn.Module):
    """Base class of the image views.

    ``forward(x, *, generator=None)`` checks the batch (a 3-D batch is single-channel),
    converts ``uint8`` to floats in [0, 1] (dividing by 255), and transforms it. A list or
    tuple of batches (a view set's output) is transformed batch by batch, so a view can
    follow a view set in a pipeline.

    Subclasses implement :meth:`draw` (the random parameters of a batch, from the
    generator; a deterministic view draws none) and :meth:`apply` (the deterministic
    transformation with those parameters). ``apply`` may change its input in place when
    ``modifies_input`` is true: ``forward`` then hands it a copy of the caller's tensor,
    never the tensor itself. A view whose ``reads_uint8`` is true gets ``uint8`` batches as
    they are and converts them itself (block by block).
    """

    label = "image view"
    modifies_input = True
    reads_uint8 = False

    def forward(self, x: Any, *, generator: torch.Generator | None = None) -> Any:
        if isinstance(x, list | tuple):
            return [self.forward(t, generator=generator) for t in x]
        if self.reads_uint8:
            return self.transform(check_images(x, self.label), generator)
        y = to_float_images(x, self.label)
        if self.modifies_input and y.data_ptr() == x.data_ptr():
            y = y.clone()
        return self.transform(y, generator)

    def transform(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        """Draw the parameters for the checked batch ``x`` and apply them."""
        n, _, h, w = x.shape
        return self.apply(x, self.draw(n, (h, w), generator, x.device))

    def draw(
        self,
        n: int,
        size: tuple[int, int],
        generator: torch.Generator | None,
        device: torch.device,
    ) -> Params:
        """The random parameters of a batch of ``n`` images of ``size`` (height, width)
        (default: none)."""
        return {}

    def apply(self, x: Tensor, params: Params) -> Tensor:
        """Transform the float batch ``x`` (N, C, H, W) with ``params``."""
        raise NotImplementedError

    def example_inputs(self, n: int = 4, *, generator: torch.Generator | None = None) -> Tensor:
        """A batch of ``n`` random RGB 16 x 16 images in [0, 1]."""
        return torch.rand(n, 3, 16, 16, generator=generator)


class RandomApplyView(ImageView):
    """An image view that transforms each sample with probability ``p`` (torchvision's
    ``RandomApply``, drawn per sample instead of per call).

    :meth:`draw` draws the gate first, ``params[gate]`` (N,) bools, then the per-sample
    values of :meth:`draw_values` (none by default); :meth:`apply` replaces the gated rows
    by :meth:`apply_rows` of them, in place and block by block, and leaves the others as
    they are.

    Args:
        p: the probability that a sample is transformed.
    """

    gate = "apply"

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = probability(p, "p", self.label)

    def draw(
        self,
        n: int,
        size: tuple[int, int],
        generator: torch.Generator | None,
        device: torch.device,
    ) -> Params:
        params: Params = {self.gate: sampling.bernoulli(n, self.p, generator, device)}
        params.update(self.draw_values(n, generator, device))
        return params

    def draw_values(
        self, n: int, generator: torch.Generator | None, device: torch.device
    ) -> Params:
        """Per-sample values drawn after the gate, one row per sample (default: none)."""
        return {}

    def apply(self, x: Tensor, params: Params) -> Tensor:
        rows = params[self.gate].nonzero().squeeze(1)
        return update_rows(x, rows, lambda xb, r: self.apply_rows(xb, r, params))

    def apply_rows(self, x: Tensor, rows: Tensor, params: Params) -> Tensor:
        """The transformed images ``x`` (the gated rows ``rows`` of the batch)."""
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"p={self.p}"
