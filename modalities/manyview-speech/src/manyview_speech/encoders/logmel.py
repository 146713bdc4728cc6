"""A compact convolutional (optionally conv + transformer) encoder over log-mel features."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from manyview.encoders.attention import (
    check_backend,
    use_attention_backend,
    xformers_unavailable_reason,
)
from manyview.options import check_int
from manyview_speech.features import LogMel, check_waveforms
from manyview_speech.views.base import example_waveforms


class LogMelEncoder(nn.Module):
    """Log-mel features, a small temporal CNN and pooling over time: ``(N, output_dim)``.

    **Inputs.** Either raw mono waveforms ``(N, samples)`` at ``sample_rate`` — the log-mel
    features are then computed inside, on the input's device — or features already computed
    ``(N, n_mels, frames)`` (for example by the ``log_mel`` + ``spec_augment`` views, which
    must use the same ``n_mels``). Each example is standardised over its own features
    (zero mean, unit variance), so the encoder is invariant to gain.

    **Network.** A temporal CNN (TC-ResNet style: the mel bands are the input channels, so
    every convolution is 1-D over time rather than 2-D over the spectrogram, the choice
    Choi et al. 2019 made for real-time keyword spotting on mobile CPUs): ``len(channels)``
    blocks of a convolution over time, batch norm and GELU, every block after the first with
    stride 2, give a sequence ``(N, frames / 2^(B-1), C)``; with ``transformer_layers`` > 0,
    sinusoidal positions are added and pre-norm transformer layers refine it. The mean and
    the max over time, concatenated, go through a linear layer to ``output_dim``. Any length
    of input works (inputs shorter than ``2^(B-1)`` frames are padded).

    **Attention.** The transformer layers' attention runs on torch's
    ``scaled_dot_product_attention`` (``attention="sdpa"``, the default: torch's own
    ``nn.TransformerEncoder``, unchanged). ``attention="xformers"`` runs it on xformers'
    memory-efficient attention instead (CUDA only, where xformers loads its CUDA extensions;
    see :mod:`manyview.encoders.attention`): the layers' ``nn.MultiheadAttention`` modules are swapped
    for :class:`manyview.encoders.attention.MultiheadSelfAttention` with the same parameters, so the
    ``state_dict`` keys and checkpoints are the same with either backend.

    Args:
        output_dim: feature size (``output_dim`` attribute).
        sample_rate: the waveforms' rate in Hz.
        n_mels: mel bands.
        n_fft: FFT size of the features.
        hop_length: frame step of the features in samples.
        channels: the CNN's channels per block.
        kernel_size: the temporal kernel size (odd).
        transformer_layers: transformer layers after the CNN (0: a pure CNN).
        heads: attention heads of the transformer layers.
        dropout: dropout before the output layer (and in the transformer).
        example_seconds: the length of :meth:`example_inputs`.
        attention: the transformer's attention backend, ``"sdpa"`` or ``"xformers"`` (needs
            ``transformer_layers`` > 0, xformers with its CUDA extensions and a CUDA device;
            otherwise a ``ValueError`` says why and to use ``"sdpa"``).
    """

    def __init__(
        self,
        output_dim: int = 128,
        sample_rate: int = 16000,
        n_mels: int = 64,
        n_fft: int = 400,
        hop_length: int = 160,
        channels: Sequence[int] = (64, 128, 128, 128),
        kernel_size: int = 5,
        transformer_layers: int = 0,
        heads: int = 4,
        dropout: float = 0.0,
        example_seconds: float = 1.0,
        attention: str = "sdpa",
    ) -> None:
        super().__init__()
        check_backend(attention, f"{self._name}: attention")
        if attention == "xformers":
            if not transformer_layers:
                raise ValueError(
                    f"{self._name}: attention='xformers' needs transformer layers "
                    "(transformer_layers > 0); a pure CNN has no attention"
                )
            reason = xformers_unavailable_reason()
            if reason is not None:
                raise ValueError(
                    f"{self._name}: attention='xformers' is unavailable: {reason}. "
                    "Use attention='sdpa' (torch's scaled_dot_product_attention, the default)."
                )
        channels = tuple(int(c) for c in channels)
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(
                f"{self._name}: kernel_size must be a positive odd int, got {kernel_size}"
            )
        if not channels or any(c < 1 for c in channels):
            raise ValueError(f"{self._name}: channels must be positive ints, got {channels}")
        check_int(output_dim, "output_dim", self._name)
        check_int(transformer_layers, "transformer_layers", self._name, least=0)
        if transformer_layers and channels[-1] % heads:
            raise ValueError(
                f"{self._name}: the last channel count ({channels[-1]}) must be divisible by "
                f"heads ({heads})"
            )
        self.features = LogMel(sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels)
        blocks: list[nn.Module] = []
        c_in = n_mels
        for i, c in enumerate(channels):
            stride = 1 if i == 0 else 2
            blocks += [
                nn.Conv1d(
                    c_in, c, kernel_size, stride=stride, padding=kernel_size // 2, bias=False
                ),
                nn.BatchNorm1d(c),
                nn.GELU(),
            ]
            c_in = c
        self.cnn = nn.Sequential(*blocks)
        self.transformer: nn.Module | None = None
        if transformer_layers:
            layer = nn.TransformerEncoderLayer(
                channels[-1],
                heads,
                dim_feedforward=2 * channels[-1],
                dropout=dropout,
                activation="gelu",
                batch_first=True,
                norm_first=True,
            )
            self.transformer = nn.TransformerEncoder(
                layer, transformer_layers, enable_nested_tensor=False
            )
            if attention != "sdpa":
                use_attention_backend(self.transformer, attention)
        self.attention = attention
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * channels[-1], output_dim)
        self.output_dim, self.n_mels, self.sample_rate = output_dim, n_mels, sample_rate
        self.min_frames = 2 ** (len(channels) - 1)
        self.example_seconds = float(example_seconds)

    _name = "logmel_cnn"

    def featurize(self, x: Tensor) -> Tensor:
        """``(N, n_mels, frames)`` standardised features of waveforms or features."""
        if isinstance(x, Tensor) and x.dim() == 3:
            if x.shape[1] != self.n_mels:
                raise ValueError(
                    f"{self._name}: features must be (N, {self.n_mels}, frames) to match "
                    f"n_mels={self.n_mels}, got {tuple(x.shape)}; multi-channel waveforms "
                    "(N, channels, samples) must be mixed down first (manyview_speech.audio.to_mono)"
                )
            if not x.is_floating_point():
                raise ValueError(f"{self._name}: features must be float, got {x.dtype}")
            feats = x
        else:
            feats = self.features(check_waveforms(x, self._name))
        feats = feats.float() if feats.dtype != torch.float64 else feats
        mean = feats.mean(dim=(1, 2), keepdim=True)
        std = feats.std(dim=(1, 2), keepdim=True).clamp(min=1e-5)
        feats = (feats - mean) / std
        if feats.shape[2] < self.min_frames:
            feats = F.pad(feats, (0, self.min_frames - feats.shape[2]))
        return feats

    def forward(self, x: Tensor) -> Tensor:
        feats = self.featurize(x).to(self.head.weight.dtype)
        seq = self.cnn(feats).transpose(1, 2)  # (N, T', C)
        if self.transformer is not None:
            seq = self.transformer(seq + _positions(seq.shape[1], seq.shape[2], seq))
        pooled = torch.cat([seq.mean(dim=1), seq.amax(dim=1)], dim=1)
        return self.head(self.dropout(pooled))

    def example_inputs(self, n: int = 2) -> Tensor:
        g = torch.Generator().manual_seed(0)
        return example_waveforms(n, self.example_seconds, self.sample_rate, generator=g)


class LogMelTransformerEncoder(LogMelEncoder):
    """The log-mel CNN followed by transformer layers over time (default 2).

    Takes the arguments of :class:`LogMelEncoder`; ``transformer_layers`` defaults to 2.
    """

    _name = "logmel_transformer"

    def __init__(
        self, output_dim: int = 128, *, transformer_layers: int = 2, **kwargs: object
    ) -> None:
        super().__init__(output_dim, transformer_layers=transformer_layers, **kwargs)  # type: ignore[arg-type]


def _positions(length: int, dim: int, like: Tensor) -> Tensor:
    """Sinusoidal position encodings ``(length, dim)`` (Vaswani et al., 2017)."""
    pos = torch.arange(length, device=like.device, dtype=like.dtype)[:, None]
    freq = torch.exp(
        torch.arange(0, dim, 2, device=like.device, dtype=like.dtype) * (-math.log(10000.0) / dim)
    )
    out = torch.zeros(length, dim, device=like.device, dtype=like.dtype)
    out[:, 0::2] = torch.sin(pos * freq)
    out[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return out
