"""Feature views (``log_mel``, ``mfcc``): waveforms to ``(N, features, frames)``."""

from __future__ import annotations

import torch
from torch import Tensor

from manyview_speech.features import MFCC, LogMel
from manyview_speech.views.base import example_waveforms

__all__ = ["LogMelView", "MFCCView"]


class LogMelView(LogMel):
    """Log-mel features as a view step: waveforms ``(N, samples)`` to ``(N, n_mels, frames)``
    (deterministic; see :class:`manyview_speech.features.LogMel` for the arguments)."""

    def forward(self, x: Tensor, *, generator: torch.Generator | None = None) -> Tensor:  # type: ignore[override]
        return super().forward(x)

    def example_inputs(self, n: int = 4, *, generator: torch.Generator | None = None) -> Tensor:
        return example_waveforms(n, 1.0, self.sample_rate, generator=generator)


class MFCCView(MFCC):
    """MFCC features as a view step: waveforms ``(N, samples)`` to ``(N, n_mfcc, frames)``
    (deterministic; see :class:`manyview_speech.features.MFCC` for the arguments)."""

    def forward(self, x: Tensor, *, generator: torch.Generator | None = None) -> Tensor:  # type: ignore[override]
        return super().forward(x)

    def example_inputs(self, n: int = 4, *, generator: torch.Generator | None = None) -> Tensor:
        return example_waveforms(n, 1.0, self.sample_rate, generator=generator)
