"""XSimGCL's noise augmentation (Yu, Xia, Chen, Cui, Hung, Yin, "XSimGCL: Towards Extremely
Simple Graph Contrastive Learning for Recommendation", TKDE 2023)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from manyview.views.checks import check_view_call


class EmbeddingNoise(nn.Module):
    r"""Add sign-aligned uniform noise of norm ``eps`` to each embedding:

    .. math:: e \leftarrow e + \epsilon\,\mathrm{sign}(e)\odot\frac{u}{\lVert u\rVert_2},
              \quad u \sim U(0, 1)^d

    The noise lies in the embedding's own orthant, so it rotates the embedding by a small
    angle (a coordinate that is exactly 0 gets no noise). It is active in training mode
    only, as in XSimGCL; call ``.train()``/``.eval()`` or pass ``force=True``.

    Args:
        eps: the noise norm ε (XSimGCL, Yelp2018: 0.2).

    Inputs: ``x`` (..., D) float. Output: the same shape and dtype.
    """

    def __init__(self, eps: float = 0.2) -> None:
        super().__init__()
        if not eps >= 0:
            raise ValueError(f"embedding_noise: eps must be >= 0, got {eps}")
        self.eps = float(eps)

    def forward(
        self, x: Tensor, *, generator: torch.Generator | None = None, force: bool = False
    ) -> Tensor:
        check_view_call(x, generator, "embedding_noise")
        if not isinstance(x, Tensor) or not x.is_floating_point() or x.dim() < 1:
            raise ValueError(
                f"embedding_noise: expects a float tensor (..., D), got "
                f"{getattr(x, 'dtype', type(x).__name__)} {tuple(getattr(x, 'shape', ()))}"
            )
        if not (self.training or force) or self.eps == 0:
            return x
        noise = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        return x + torch.sign(x) * F.normalize(noise, dim=-1) * self.eps

    def example_inputs(self, n: int = 8, *, generator: torch.Generator | None = None) -> Tensor:
        """A batch of ``n`` embeddings of size 16."""
        return torch.randn(n, 16, generator=generator)

    def extra_repr(self) -> str:
        return f"eps={self.eps}"
