"""The ``spec_augment`` view: frequency and time masks drawn per sample (SpecAugment)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from manyview.options import check_fraction, check_ints
from manyview_speech.views.base import rand, randint

__all__ = ["SpecAugment"]


def _bands(
    n: int,
    count: int,
    size: int,
    max_width: int,
    generator: torch.Generator | None,
    device: torch.device,
) -> Tensor:
    """``(n, size)`` bool: the union of ``count`` bands per row, each of a width drawn in
    [0, max_width] (at most ``size``) and a start drawn so the band fits."""
    if count == 0 or max_width == 0:
        return torch.zeros(n, size, dtype=torch.bool, device=device)
    max_width = min(max_width, size)
    width = randint(0, max_width, (n, count), generator, device)
    start = randint(torch.zeros_like(width), size - width, (n, count), generator, device)
    pos = torch.arange(size, device=device)
    inside = (pos >= start[..., None]) & (pos < (start + width)[..., None])
    return inside.any(dim=1)


class SpecAugment(nn.Module):
    """SpecAugment's frequency and time masking (Park et al., 2019) on a feature batch
    ``(N, features, frames)``, with masks drawn per sample.

    Each sample gets ``freq_masks`` bands of consecutive feature rows, each of a width drawn
    uniformly in [0, ``freq_width``], and ``time_masks`` bands of consecutive frames of width
    in [0, ``time_width``]; masked cells are set to ``fill``.

    Args:
        freq_masks: frequency masks per sample.
        freq_width: the widest frequency mask (rows).
        time_masks: time masks per sample.
        time_width: the widest time mask (frames).
        fill: ``"mean"`` (each sample's mean, the neutral value of log features), ``"zero"``,
            or a number.
        p: the probability that a sample is masked at all.
    """

    name = "spec_augment"

    def __init__(
        self,
        freq_masks: int = 2,
        freq_width: int = 8,
        time_masks: int = 2,
        time_width: int = 10,
        fill: str | float = "mean",
        p: float = 1.0,
    ) -> None:
        super().__init__()
        check_ints(
            self.name,
            least=0,
            freq_masks=freq_masks,
            freq_width=freq_width,
            time_masks=time_masks,
            time_width=time_width,
        )
        if isinstance(fill, str) and fill not in ("mean", "zero"):
            raise ValueError(f"spec_augment: fill must be 'mean', 'zero' or a number, got {fill!r}")
        self.freq_masks, self.freq_width = freq_masks, freq_width
        self.time_masks, self.time_width = time_masks, time_width
        self.fill, self.p = fill, check_fraction(p, "p", self.name)

    def masks(
        self,
        n: int,
        features: int,
        frames: int,
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str = "cpu",
    ) -> tuple[Tensor, Tensor]:
        """The masks :meth:`forward` applies: ``(N, features)`` and ``(N, frames)`` bools."""
        device = torch.device(device)
        freq = _bands(n, self.freq_masks, features, self.freq_width, generator, device)
        time = _bands(n, self.time_masks, frames, self.time_width, generator, device)
        return freq, time

    def forward(self, x: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        if not isinstance(x, Tensor) or x.dim() != 3 or not x.is_floating_point():
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            hint = (
                "; put log_mel or mfcc before spec_augment"
                if isinstance(x, Tensor) and x.dim() == 2
                else ""
            )
            raise ValueError(
                f"spec_augment: expects features (N, features, frames), got {shape}{hint}"
            )
        n, f, t = x.shape
        freq, time = self.masks(n, f, t, generator=generator, device=x.device)
        cells = freq[:, :, None] | time[:, None, :]
        if self.p < 1:
            cells = cells & (rand(n, generator, x.device) < self.p)[:, None, None]
        if self.fill == "mean":
            value = x.mean(dim=(1, 2), keepdim=True)
        elif self.fill == "zero":
            value = x.new_zeros(())
        else:
            value = x.new_tensor(float(self.fill))
        return torch.where(cells, value, x)

    def example_inputs(self, n: int = 4, *, generator: torch.Generator | None = None) -> Tensor:
        return torch.randn(n, 64, 101, generator=generator)
