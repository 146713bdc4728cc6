"""Colour views: colour jitter, random grayscale and solarize, with per-sample parameters."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from manyview_vision import functional as VF
from manyview_vision import sampling
from manyview_vision.views.base import Params, RandomApplyView, pair, probability

_OPS: tuple[Callable[..., Tensor], ...] = (
    VF.adjust_brightness,
    VF.adjust_contrast,
    VF.adjust_saturation,
    VF.adjust_hue,
)
_NAMES = ("brightness", "contrast", "saturation", "hue")


def _factor_range(
    value: float | Sequence[float], name: str, who: str
) -> tuple[float, float] | None:
    """torchvision's ColorJitter ranges: ``v`` -> (max(0, 1 - v), 1 + v) for brightness,
    contrast and saturation and (-v, v) for hue; a pair is taken as given. A range that
    is the identity (v = 0) turns the operation off (``None``)."""
    hue = name == "hue"
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value < 0 or (hue and value > 0.5):
            raise ValueError(
                f"{who}: {name} must be {'in [0, 0.5]' if hue else '>= 0'}, got {value!r}"
            )
        low, high = (-value, value) if hue else (max(0.0, 1.0 - value), 1.0 + value)
    else:
        low, high = pair(value, name, who)
        lowest, highest = (-0.5, 0.5) if hue else (0.0, float("inf"))
        if low < lowest or high > highest:
            raise ValueError(
                f"{who}: {name} range {(low, high)} must lie within [{lowest}, {highest}]"
            )
    centre = 0.0 if hue else 1.0
    return None if low == high == centre else (float(low), float(high))


class ColorJitter(RandomApplyView):
    """Random brightness, contrast, saturation and hue, each sample with its own factors
    and its own order of the four operations (torchvision's ``ColorJitter``, applied with
    probability ``p`` as SSL pipelines wrap it in ``RandomApply``).

    Factors are uniform in torchvision's ranges: brightness, contrast and saturation
    ``v`` give [max(0, 1 - v), 1 + v]; hue ``v`` gives [-v, v] turns (v <= 0.5); a
    (low, high) pair is used as it is; 0 turns an operation off. The operations follow
    torchvision's definitions (:mod:`manyview_vision.functional`), clamp to [0, 1] after
    each step, and leave one-channel images' saturation and hue alone.

    ``random_order=True`` (default) gives each sample a uniformly random order of the four
    operations, as torchvision draws one per call (and SimCLR per image); samples are
    grouped by order (at most 24 groups), so the work stays batched. ``random_order=False``
    always applies brightness, contrast, saturation, hue, in that order.

    Args:
        brightness, contrast, saturation, hue: strengths or (low, high) ranges (defaults
            0.4, 0.4, 0.4, 0.1: MoCo v2, BYOL, DINO; SimCLR uses 0.8, 0.8, 0.8, 0.2).
        p: probability that a sample is jittered at all (default 0.8).
        random_order: see above.

    Inputs: images (N, C, H, W) with C = 1 or 3. Output: float, the same shape.
    """

    label = "color_jitter"

    def __init__(
        self,
        brightness: float | Sequence[float] = 0.4,
        contrast: float | Sequence[float] = 0.4,
        saturation: float | Sequence[float] = 0.4,
        hue: float | Sequence[float] = 0.1,
        p: float = 0.8,
        random_order: bool = True,
    ) -> None:
        super().__init__(p)
        values = (brightness, contrast, saturation, hue)
        self.ranges = tuple(
            _factor_range(v, k, self.label) for v, k in zip(values, _NAMES, strict=True)
        )
        self.random_order = bool(random_order)

    def draw_values(
        self, n: int, generator: torch.Generator | None, device: torch.device
    ) -> Params:
        params: Params = {}
        for name, r in zip(_NAMES, self.ranges, strict=True):
            if r is not None:
                params[name] = sampling.uniform(n, r[0], r[1], generator, device)
        if self.random_order:
            params["order"] = sampling.permutations(n, 4, generator, device)
        else:
            params["order"] = torch.arange(4, device=device).expand(n, 4)
        return params

    def apply(self, x: Tensor, params: Params) -> Tensor:
        check_channels(x, self.label)
        factors = [params.get(name) for name in _NAMES]
        return jitter_(x, params["apply"], factors, params["order"])

    def extra_repr(self) -> str:
        ranges = ", ".join(
            f"{k}={r}" for k, r in zip(_NAMES, self.ranges, strict=True) if r is not None
        )
        return f"{ranges}, p={self.p}, random_order={self.random_order}"


def check_channels(x: Tensor, who: str) -> None:
    """Colour operations need 1 or 3 channels; anything else is a ValueError."""
    if x.shape[1] not in (1, 3):
        raise ValueError(
            f"{who}: colour operations need RGB (3 channels) or grayscale (1 channel) images, "
            f"got {x.shape[1]} channels in shape {tuple(x.shape)}"
        )


def jitter_(x: Tensor, apply: Tensor, factors: list[Tensor | None], order: Tensor) -> Tensor:
    """In place: the four colour operations on the rows where ``apply`` holds, each row in
    its own ``order`` (N, 4) of operation indices (0 brightness, 1 contrast, 2 saturation,
    3 hue), skipping operations whose factors are None. Rows are grouped by order, so the
    loop runs over at most 24 orders and cache-sized blocks of rows, never per sample."""
    codes = (order * torch.tensor([64, 16, 4, 1], device=order.device)).sum(dim=1)
    codes = torch.where(apply, codes, torch.full_like(codes, -1))
    for code in torch.unique(codes).tolist():
        if code < 0:
            continue
        ops = [
            op
            for op in (code // 64, code // 16 % 4, code // 4 % 4, code % 4)
            if factors[op] is not None
        ]

        def run(part: Tensor, rows: Tensor, ops: list[int] = ops) -> Tensor:
            for op in ops:
                f = factors[op].index_select(0, rows)  # type: ignore[union-attr]
                part = VF.adjust_hue(part, f) if op == 3 else _OPS[op](part, f, inplace=True)
            return part

        VF.update_rows(x, (codes == code).nonzero().squeeze(1), run)
    return x


class RandomGrayscale(RandomApplyView):
    """Turn each image to grayscale with probability ``p``, keeping its channels
    (torchvision's ``RandomGrayscale``: luma 0.2989 R + 0.587 G + 0.114 B, repeated).

    Args:
        p: probability (default 0.2, as SimCLR, BYOL and DINO).

    Inputs: images (N, C, H, W) with C = 1 or 3 (one channel is left as it is).
    """

    label = "random_grayscale"
    gate = "gray"

    def __init__(self, p: float = 0.2) -> None:
        super().__init__(p)

    def apply(self, x: Tensor, params: Params) -> Tensor:
        check_channels(x, self.label)
        return x if x.shape[1] == 1 else super().apply(x, params)

    def apply_rows(self, x: Tensor, rows: Tensor, params: Params) -> Tensor:
        return VF.grayscale(x)


class RandomSolarize(RandomApplyView):
    """Invert the pixels at or above ``threshold`` (``1 - x``) with probability ``p`` per
    sample (torchvision's ``RandomSolarize``; BYOL's and DINO's second view use p = 0.2).

    Args:
        threshold: in [0, 1] (default 0.5).
        p: probability (default 0.2).
    """

    label = "solarize"
    gate = "solarize"

    def __init__(self, threshold: float = 0.5, p: float = 0.2) -> None:
        super().__init__(p)
        self.threshold = probability(threshold, "threshold", self.label)

    def apply_rows(self, x: Tensor, rows: Tensor, params: Params) -> Tensor:
        return VF.solarize(x, self.threshold)

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}, p={self.p}"
