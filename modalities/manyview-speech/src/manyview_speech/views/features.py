"""Feature views (``log_mel``, ``mfcc``): waveforms to ``(N, features, frames)``."""

from __future__ import annotations

import torch
from torch import Tensor

from manyview_speech.features import MFCC, LogMel
from manyview_speech.views.base import WaveformExamples

__all__ = ["LogMelView", "MFCCView"]


class _FeatureView(WaveformExamples):
    """A feature module as a view step: deterministic, so the generator is not used."""

    def forward(self, x: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        return super().forward(x)  # type: ignore[misc]


class LogMelView(_FeatureView, LogMel):
    """Log-mel features as a view step: waveforms ``(N, samples)`` to ``(N, n_mels, frames)``
    (deterministic; see :class:`manyview_speech.features.LogMel` for the arguments)."""


class MFCCView(_FeatureView, MFCC):
    """MFCC features as a view step: waveforms ``(N, samples)`` to ``(N, n_mfcc, frames)``
    (deterministic; see :class:`manyview_speech.features.MFCC` for the arguments)."""
