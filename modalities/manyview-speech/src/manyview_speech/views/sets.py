"""View sets: the M view pipelines of multi-view training (two-view, multi-view, multi-crop)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from manyview_speech.views.speech_augment import SpeechAugment

__all__ = ["ViewSet", "view_set"]


class ViewSet(nn.Module):
    """M view pipelines, one per view: ``view_set(x, generator=g)`` returns a list of M
    outputs (their lengths may differ, as in multi-crop)."""

    def __init__(self, pipelines: Sequence[nn.Module]) -> None:
        super().__init__()
        if not pipelines:
            raise ValueError("view set: needs at least one pipeline")
        self.pipelines = nn.ModuleList(pipelines)

    def __len__(self) -> int:
        return len(self.pipelines)

    def forward(self, x: Tensor, *, generator: torch.Generator | None = None) -> list[Tensor]:
        return [pipeline(x, generator=generator) for pipeline in self.pipelines]


def view_set(
    name: str = "two_view",
    *,
    num_views: int | None = None,
    global_seconds: float = 1.0,
    local_seconds: float = 0.5,
    **options: Any,
) -> ViewSet:
    """The pipelines of a multi-view setting.

    Args:
        name: ``"two_view"`` (2 independent :class:`SpeechAugment` draws, SimCLR style),
            ``"multi_view"`` (``num_views`` draws, default 4; for MV-InfoNCE / MV-DHEL) or
            ``"multi_crop"`` (2 crops of ``global_seconds`` and ``num_views - 2`` crops of
            ``local_seconds``, default 6 views in all; DINO / SwAV style).
        num_views: how many views (not for ``"two_view"``).
        global_seconds, local_seconds: the crop lengths of ``"multi_crop"``.
        **options: passed to every :class:`SpeechAugment` (``strength``, ``features``,
            ``sample_rate``, ``n_mels``...).
    """
    if name == "two_view":
        if num_views not in (None, 2):
            raise ValueError(f"view set 'two_view' has 2 views, got num_views={num_views}")
        return ViewSet([SpeechAugment(**options) for _ in range(2)])
    if name == "multi_view":
        m = 4 if num_views is None else int(num_views)
        if m < 2:
            raise ValueError(f"view set 'multi_view' needs num_views >= 2, got {m}")
        return ViewSet([SpeechAugment(**options) for _ in range(m)])
    if name == "multi_crop":
        m = 6 if num_views is None else int(num_views)
        if m < 2:
            raise ValueError(f"view set 'multi_crop' needs num_views >= 2, got {m}")
        crops = [global_seconds] * 2 + [local_seconds] * (m - 2)
        return ViewSet([SpeechAugment(crop_seconds=c, **options) for c in crops])
    raise ValueError(f"unknown view set {name!r}; choose 'two_view', 'multi_view' or 'multi_crop'")
