"""Gaussian blur with a random sigma per sample."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from manyview_vision import functional as VF
from manyview_vision import sampling
from manyview_vision.views.base import Params, RandomApplyView, pair


def auto_kernel_size(height: int, width: int) -> int:
    """SimCLR's blur kernel: 10% of the image side, made odd, at least 3 (23 at 224)."""
    k = int(0.1 * min(height, width))
    return max(3, k + 1 if k % 2 == 0 else k)


class GaussianBlur(RandomApplyView):
    """Blur each image with probability ``p`` by a Gaussian whose sigma is drawn per sample,
    uniform in ``sigma`` (torchvision's ``GaussianBlur`` inside ``RandomApply``).

    The kernel follows torchvision's ``gaussian_blur`` (reflect padding, the same sigma in
    both axes); the batch is blurred in one pass with per-sample separable kernels
    (:func:`~manyview_vision.functional.gaussian_blur`), only the selected samples.

    Args:
        kernel_size: odd size; ``None`` (default) takes SimCLR's 10% of the image's smaller
            side, made odd, at least 3.
        sigma: (low, high) range of sigma in pixels (default (0.1, 2.0): SimCLR, BYOL, DINO).
        p: probability (default 0.5).
    """

    label = "gaussian_blur"
    gate = "blur"

    def __init__(
        self,
        kernel_size: int | None = None,
        sigma: Sequence[float] = (0.1, 2.0),
        p: float = 0.5,
    ) -> None:
        super().__init__(p)
        if kernel_size is not None and (
            isinstance(kernel_size, bool)
            or not isinstance(kernel_size, int)
            or kernel_size < 1
            or kernel_size % 2 == 0
        ):
            raise ValueError(
                f"{self.label}: kernel_size must be an odd positive int or None, got {kernel_size!r}"
            )
        self.kernel_size = kernel_size
        self.sigma = pair(sigma, "sigma", self.label)
        if not self.sigma[0] > 0:
            raise ValueError(f"{self.label}: sigma must be positive, got {tuple(sigma)}")

    def draw_values(
        self, n: int, generator: torch.Generator | None, device: torch.device
    ) -> Params:
        return {"sigma": sampling.uniform(n, self.sigma[0], self.sigma[1], generator, device)}

    def apply_rows(self, x: Tensor, rows: Tensor, params: Params) -> Tensor:
        k = self.kernel_size or auto_kernel_size(x.shape[-2], x.shape[-1])
        return VF.gaussian_blur(x, params["sigma"][rows], k)

    def extra_repr(self) -> str:
        k = self.kernel_size or "10% of the side"
        return f"kernel_size={k}, sigma={self.sigma}, p={self.p}"
