"""Geometric views: random resized crop (with an optional fused flip) and horizontal flip."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from manyview.datasets.files import image_size_pair
from manyview_vision import functional as VF
from manyview_vision import sampling
from manyview_vision.views.base import (
    ImageView,
    Params,
    RandomApplyView,
    pair,
    probability,
)


class RandomResizedCrop(ImageView):
    """A random crop of each image, resized to ``size`` (torchvision's ``RandomResizedCrop``).

    Each sample gets its own box, drawn as torchvision draws one (area fraction in
    ``scale``, log aspect ratio uniform in ``log(ratio)``, 10 tries, then a centred
    fallback; :func:`~manyview_vision.sampling.resized_crop_boxes`), and the batch is
    cropped and resized by bilinear ``grid_sample``
    (:func:`~manyview_vision.functional.resized_crop`). Unlike torchvision's default, a box
    that is larger than the output is not antialiased. ``uint8`` input is converted block
    by block, never as a whole float copy.

    Args:
        size: output size, an int or (height, width); ``None`` (default) keeps the input's
            size, times ``relative_size``.
        scale: range of the box's area as a fraction of the image's (default (0.08, 1.0)).
        ratio: range of the box's aspect ratio width/height (default (3/4, 4/3)).
        hflip_p: probability of also mirroring the crop left to right, fused into the same
            sampling grid (default 0: use :class:`HorizontalFlip` or set it here).
        relative_size: with ``size=None``, the output side is ``round(relative_size * input
            side)`` (multi-crop's local crops: 96/224 of the global size).

    Inputs: images (N, C, H, W) or (N, H, W), float in [0, 1] or uint8. Output: float
    (N, C, *size).
    """

    label = "random_resized_crop"
    modifies_input = False
    reads_uint8 = True

    def __init__(
        self,
        size: int | Sequence[int] | None = None,
        scale: Sequence[float] = (0.08, 1.0),
        ratio: Sequence[float] = (3 / 4, 4 / 3),
        hflip_p: float = 0.0,
        relative_size: float = 1.0,
    ) -> None:
        super().__init__()
        self.size = image_size_pair(size, self.label, "size")
        self.scale = pair(scale, "scale", self.label)
        self.ratio = pair(ratio, "ratio", self.label)
        if not self.scale[0] > 0 or self.scale[1] > 1:
            raise ValueError(f"{self.label}: scale must lie in (0, 1], got {tuple(scale)}")
        if not self.ratio[0] > 0:
            raise ValueError(f"{self.label}: ratio must be positive, got {tuple(ratio)}")
        self.hflip_p = probability(hflip_p, "hflip_p", self.label)
        if isinstance(relative_size, bool) or not relative_size > 0:
            raise ValueError(f"{self.label}: relative_size must be > 0, got {relative_size!r}")
        self.relative_size = float(relative_size)

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """The output (height, width) for an input of this size."""
        if self.size is not None:
            return self.size
        r = self.relative_size
        return max(1, round(height * r)), max(1, round(width * r))

    def draw(
        self,
        n: int,
        size: tuple[int, int],
        generator: torch.Generator | None,
        device: torch.device,
    ) -> Params:
        top, left, h, w = sampling.resized_crop_boxes(
            n, size[0], size[1], self.scale, self.ratio, generator, device
        )
        flip = sampling.bernoulli(n, self.hflip_p, generator, device) if self.hflip_p else None
        return {"top": top, "left": left, "height": h, "width": w, "flip": flip}

    def apply(self, x: Tensor, params: Params) -> Tensor:
        n, c, h, w = x.shape
        out_h, out_w = self.output_size(h, w)
        dtype = x.dtype if x.is_floating_point() else torch.float32
        out = torch.empty(n, c, out_h, out_w, dtype=dtype, device=x.device)
        flip = params["flip"]
        for part in VF.row_blocks(n, c * max(h * w, out_h * out_w), x.device):
            xb = x[part]
            if not x.is_floating_point():  # uint8: convert only this block
                xb = xb.to(dtype)
            box = [params[k][part] for k in ("top", "left", "height", "width")]
            y = VF.resized_crop(xb, *box, (out_h, out_w), None if flip is None else flip[part])
            out[part] = y if x.is_floating_point() else y.div_(255.0)
        return out

    def extra_repr(self) -> str:
        size = self.size if self.size is not None else f"input x {self.relative_size:g}"
        return f"size={size}, scale={self.scale}, ratio={self.ratio}, hflip_p={self.hflip_p}"


class HorizontalFlip(RandomApplyView):
    """Mirror each image left to right with probability ``p``, per sample.

    Args:
        p: flip probability (default 0.5).
    """

    label = "horizontal_flip"
    gate = "flip"

    def __init__(self, p: float = 0.5) -> None:
        super().__init__(p)

    def apply_rows(self, x: Tensor, rows: Tensor, params: Params) -> Tensor:
        return x.flip(-1)
