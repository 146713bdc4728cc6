"""Speech views: batched augmentations with per-sample randomness from a ``torch.Generator``.

Waveform views take mono waveforms ``(N, samples)`` and keep the batch size; every row
draws its own parameters (a crop offset, a gain, an SNR, a speed factor) in one vectorised
draw, with no Python loop over the samples. Feature views take ``(N, features, frames)``.
A typical pipeline, as a config's ``views`` list::

    audio_shift -> audio_gain -> audio_noise -> audio_speed -> log_mel -> spec_augment

or ``speech_augment``, which is that pipeline in one view with strength presets. Each
call with the same seeded generator gives the same output; the randomness is drawn on the
generator's device and moved to the input's.

View sets (:func:`view_set`) make the M pipelines of multi-view training: M independent
draws of one pipeline (``"two_view"``, ``"multi_view"``), or multi-crop: two long crops and
M - 2 short ones (``"multi_crop"``).
"""

from manyview_speech.views.base import example_waveforms
from manyview_speech.views.features import LogMelView, MFCCView
from manyview_speech.views.sets import ViewSet, view_set
from manyview_speech.views.spec_augment import SpecAugment
from manyview_speech.views.speech_augment import Compose, SpeechAugment
from manyview_speech.views.waveform import AudioCrop, AudioGain, AudioNoise, AudioShift, AudioSpeed

__all__ = [
    "AudioCrop",
    "AudioGain",
    "AudioNoise",
    "AudioShift",
    "AudioSpeed",
    "Compose",
    "LogMelView",
    "MFCCView",
    "SpecAugment",
    "SpeechAugment",
    "ViewSet",
    "example_waveforms",
    "view_set",
]
