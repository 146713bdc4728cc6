"""torchaudio's wav2vec 2.0 and HuBERT architectures as manyview encoders.

Built with ``torchaudio.models`` factory functions: random weights by default, or weights
from a local file (``checkpoint=``). Nothing is ever downloaded: to use pretrained
weights, save a torchaudio ``Wav2Vec2Model``'s ``state_dict()`` to a ``.pt`` or
``.safetensors`` file where you have them (for example from
``torchaudio.pipelines.HUBERT_BASE.get_model()``) and pass its path with the matching
``size``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from manyview_speech.features import check_waveforms
from manyview_speech.views.base import example_waveforms

TINY: dict[str, Any] = {
    "extractor_mode": "group_norm",
    "extractor_conv_layer_config": [(32, 10, 5)] + [(32, 3, 2)] * 4 + [(32, 2, 2)] * 2,
    "extractor_conv_bias": False,
    "encoder_embed_dim": 64,
    "encoder_projection_dropout": 0.0,
    "encoder_pos_conv_kernel": 16,
    "encoder_pos_conv_groups": 4,
    "encoder_num_layers": 2,
    "encoder_num_heads": 4,
    "encoder_attention_dropout": 0.0,
    "encoder_ff_interm_features": 128,
    "encoder_ff_interm_dropout": 0.0,
    "encoder_dropout": 0.0,
    "encoder_layer_norm_first": False,
    "encoder_layer_drop": 0.0,
    "aux_num_out": None,
}
"""A tiny configuration (64-d, 2 layers, about 0.1 M parameters) for tests and CPU runs;
the same 20 ms frame rate as the real models."""

_SIZES: dict[str, dict[str, str]] = {
    "wav2vec2": {
        "base": "wav2vec2_base",
        "large": "wav2vec2_large",
        "large_lv60k": "wav2vec2_large_lv60k",
        "xlsr_300m": "wav2vec2_xlsr_300m",
        "xlsr_1b": "wav2vec2_xlsr_1b",
    },
    "hubert": {"base": "hubert_base", "large": "hubert_large", "xlarge": "hubert_xlarge"},
}


def load_state_dict(path: str | os.PathLike[str]) -> dict[str, Tensor]:
    """A state dict from ``.safetensors`` or a torch file (``weights_only``), unwrapped from
    ``{"state_dict": ...}`` / ``{"model": ...}`` and stripped of a ``"model."`` prefix."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {path}: no such file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(
            f"checkpoint {path}: cannot be read: {type(exc).__name__}: {exc}"
        ) from None
    for key in ("state_dict", "model"):
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"checkpoint {path}: expected a state dict of tensors")
    return {k.removeprefix("model."): v for k, v in state.items()}


class Wav2Vec2Encoder(nn.Module):
    """wav2vec 2.0 (Baevski et al., 2020): a convolutional feature extractor and a
    transformer over raw waveforms ``(N, samples)`` at 16 kHz, mean-pooled over frames.

    Args:
        size: ``"tiny"`` (default: :data:`TINY`, CPU-sized), or a torchaudio size: ``"base"``,
            ``"large"``, ``"large_lv60k"``, ``"xlsr_300m"``, ``"xlsr_1b"`` (wav2vec2);
            ``"base"``, ``"large"``, ``"xlarge"`` (HuBERT).
        checkpoint: a local ``.pt``/``.safetensors`` state dict of torchaudio's
            ``Wav2Vec2Model`` of this size (``None``: random init). Never downloaded.
        layer: use the output of this transformer layer (1-based; ``None``: the last).
            Lower layers of speech SSL models carry more speaker and accent information.
        pooling: ``"mean"`` over frames, or ``"mean_std"`` (mean and standard deviation,
            concatenated: statistics pooling; ``output_dim`` doubles).
        normalize_waveform: standardise each waveform first (what the large/XLS-R models
            were trained with).
        freeze_feature_extractor: keep the convolutional feature extractor fixed (as in
            fine-tuning recipes).
        config: overrides of the architecture's arguments (for ``"tiny"``: any argument of
            ``torchaudio.models.wav2vec2_model``; for a named size: its dropout arguments).
        example_seconds: the length of :meth:`example_inputs`.
    """

    family = "wav2vec2"
    sample_rate = 16000

    def __init__(
        self,
        size: str = "tiny",
        checkpoint: str | None = None,
        layer: int | None = None,
        pooling: str = "mean",
        normalize_waveform: bool = False,
        freeze_feature_extractor: bool = False,
        config: Mapping[str, Any] | None = None,
        example_seconds: float = 1.0,
    ) -> None:
        super().__init__()
        import torchaudio.models as M

        sizes = _SIZES[self.family]
        if size != "tiny" and size not in sizes:
            raise ValueError(
                f"{self.family}: size must be 'tiny' or one of {sorted(sizes)}, got {size!r}"
            )
        if pooling not in ("mean", "mean_std"):
            raise ValueError(
                f"{self.family}: pooling must be 'mean' or 'mean_std', got {pooling!r}"
            )
        overrides = dict(config or {})
        try:
            if size == "tiny":
                self.model = M.wav2vec2_model(**{**TINY, **overrides})
            else:
                self.model = getattr(M, sizes[size])(**overrides)
        except TypeError as exc:
            raise ValueError(
                f"{self.family} size {size!r}: bad config {overrides}: {exc}"
            ) from None
        self.size = size
        if checkpoint is not None:
            self.load_checkpoint(checkpoint)
        num_layers = len(self.model.encoder.transformer.layers)
        if layer is not None and not 1 <= layer <= num_layers:
            raise ValueError(f"{self.family}: layer must be in 1..{num_layers}, got {layer}")
        if freeze_feature_extractor:
            for p in self.model.feature_extractor.parameters():
                p.requires_grad_(False)
        dim = self.model.encoder.feature_projection.projection.out_features
        self.layer, self.pooling = layer, pooling
        self.normalize_waveform = bool(normalize_waveform)
        self.output_dim = dim * (2 if pooling == "mean_std" else 1)
        self.example_seconds = float(example_seconds)

    def load_checkpoint(self, path: str | os.PathLike[str]) -> None:
        """Load a local state dict of torchaudio's ``Wav2Vec2Model`` (an ``aux`` head in the
        file is ignored)."""
        state = load_state_dict(path)
        if self.model.aux is None:
            state = {k: v for k, v in state.items() if not k.startswith("aux.")}
        own = self.model.state_dict()
        wrong = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
        if wrong:
            k = wrong[0]
            raise ValueError(
                f"checkpoint {path} does not fit {self.family} size {self.size!r}: {len(wrong)} "
                f"tensors have other shapes, e.g. {k} is {tuple(state[k].shape)} in the file "
                f"but {tuple(own[k].shape)} here; pick the size the weights were saved from"
            )
        missing, unexpected = self.model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(
                f"checkpoint {path} does not fit {self.family} size {self.size!r}: "
                f"missing {missing[:3]}{'...' if len(missing) > 3 else ''}, unexpected "
                f"{unexpected[:3]}{'...' if len(unexpected) > 3 else ''}"
            )

    def frames(self, x: Tensor) -> Tensor:
        """``(N, frames, D)``: the chosen layer's output for waveforms ``(N, samples)``."""
        x = check_waveforms(x, self.family)
        if x.shape[1] < 400:
            raise ValueError(
                f"{self.family}: needs at least 400 samples (25 ms at 16 kHz) per waveform, "
                f"got {x.shape[1]}"
            )
        x = x.to(self.model.encoder.feature_projection.projection.weight.dtype)
        if self.normalize_waveform:
            x = (x - x.mean(1, keepdim=True)) / x.std(1, keepdim=True).clamp(min=1e-5)
        outputs, _ = self.model.extract_features(x, num_layers=self.layer)
        return outputs[-1]

    def forward(self, x: Tensor) -> Tensor:
        h = self.frames(x)
        if self.pooling == "mean":
            return h.mean(dim=1)
        return torch.cat([h.mean(dim=1), h.std(dim=1)], dim=1)

    def example_inputs(self, n: int = 2) -> Tensor:
        g = torch.Generator().manual_seed(0)
        return example_waveforms(n, self.example_seconds, self.sample_rate, generator=g)


class HuBERTEncoder(Wav2Vec2Encoder):
    """HuBERT (Hsu et al., 2021): the wav2vec 2.0 architecture trained by masked prediction
    of clustered targets; sizes ``"tiny"``, ``"base"``, ``"large"``, ``"xlarge"``. Takes the
    arguments of :class:`Wav2Vec2Encoder`."""

    family = "hubert"
