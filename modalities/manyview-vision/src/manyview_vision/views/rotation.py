"""Rotated copies of each image, the input transformations of SLA (Lee, Hwang, Shin,
"Self-supervised Label Augmentation via Input Transformations", ICML 2020).

The core's ``sla`` loss (:mod:`manyview.distill.sla`) reads the joint labels of these copies
(:func:`manyview.distill.sla.joint_labels`)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["Rotation"]


class Rotation(nn.Module):
    r"""M rotated copies of each image, contiguous per sample.

    Row :math:`iM + j` of the output is image i rotated by ``rotations[j]`` degrees
    (``torch.rot90`` over the last two axes, from the first towards the second, as SLA's
    ``augmentations.rotation``). The first rotation should be 0 so that copy 0 is the
    untransformed image (SLA's single inference and self-distillation head read it).

    Deterministic: ``generator`` is accepted for the view interface and unused. The output
    has ``copies_per_input`` (= M) rows per input row.

    Args:
        rotations: angles in degrees, distinct multiples of 90 (default ``(0, 90, 180, 270)``;
            SLA's ``rotation2`` is ``(0, 180)``). 90 and 270 need square images.

    Inputs: ``x`` (N, C, H, W) float or integer images (any (N, ..., H, W)). Output:
    (N·M, C, H, W), same dtype.
    """

    def __init__(self, rotations: Sequence[int] = (0, 90, 180, 270)) -> None:
        super().__init__()
        rots = tuple(rotations)
        if not rots:
            raise ValueError("rotation: rotations must not be empty")
        for r in rots:
            if isinstance(r, bool) or not isinstance(r, int) or r % 90 != 0:
                raise ValueError(f"rotation: rotations must be multiples of 90 degrees, got {r!r}")
        quarter_turns = tuple((r // 90) % 4 for r in rots)
        if len(set(quarter_turns)) != len(quarter_turns):
            raise ValueError(f"rotation: rotations must be distinct (mod 360), got {rots}")
        self.rotations = rots
        self.quarter_turns = quarter_turns

    @property
    def copies_per_input(self) -> int:
        """M: output rows per input row."""
        return len(self.rotations)

    num_transforms = copies_per_input

    def forward(self, x: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        if not isinstance(x, Tensor) or x.dim() < 3:
            raise ValueError(
                "rotation: expects images (N, C, H, W), got "
                f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}"
            )
        h, w = x.shape[-2:]
        if h != w and any(k % 2 for k in self.quarter_turns):
            raise ValueError(
                f"rotation: 90/270-degree rotations need square images, got H x W = {h} x {w}; "
                "use rotations=(0, 180) for non-square images"
            )
        dims = (x.dim() - 2, x.dim() - 1)
        copies = [torch.rot90(x, k, dims) for k in self.quarter_turns]
        return torch.stack(copies, dim=1).reshape(-1, *x.shape[1:])

    def example_inputs(self, n: int = 8, *, generator: torch.Generator | None = None) -> Tensor:
        """A batch of ``n`` random 3 x 8 x 8 images."""
        return torch.rand(n, 3, 8, 8, generator=generator)

    def extra_repr(self) -> str:
        return f"rotations={self.rotations}"
