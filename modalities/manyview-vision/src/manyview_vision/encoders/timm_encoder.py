"""Any timm architecture as a manyview encoder, built offline, weights from a local file."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from manyview.options import check_int
from manyview_vision.encoders.inputs import image_batch

_FORBIDDEN = ("pretrained", "num_classes", "pretrained_cfg", "pretrained_cfg_overlay")


class WeightsNotFoundError(FileNotFoundError, ValueError):
    """The ``weights`` file does not exist (a ValueError too, so configs report it)."""


def _suggestions(name: str) -> str:
    import timm

    names = timm.list_models()
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.6)
    close += [n for n in names if name.lower() in n and n not in close][: 5 - len(close)]
    return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else "."


class TimmEncoder(nn.Module):
    """A timm model by name, as a feature extractor: (N, C, H, W) -> (N, output_dim).

    Always built with ``pretrained=False`` and ``num_classes=0`` (timm's pooled features,
    no classifier): nothing is ever downloaded. Weights come from a local file instead:
    safetensors, a timm training checkpoint (``state_dict``/``model`` inside, ``module.``
    stripped) or a manyview checkpoint (the prefix up to the encoder is found and
    stripped). A classifier in the file is dropped; with ``in_chans`` other than the
    file's, the first convolution is adapted as timm adapts pretrained weights.

    Args:
        model: a timm architecture, e.g. ``"resnet18"``, ``"vit_tiny_patch16_224"``,
            ``"convnext_atto"`` (``timm.list_models()``; a ``.tag`` suffix is accepted).
        in_chans: image channels (1 for grayscale).
        img_size: input size for architectures built for one size (ViTs, ...): an int or
            (height, width). Convolutional networks take any size and refuse it.
        weights: path of a local weights file, or ``None`` for random initialisation.
        weights_prefix: key prefix to strip from the file (``None``: found automatically).
        **kwargs: passed to ``timm.create_model`` (``drop_path_rate=0.1``,
            ``dynamic_img_size=True``, ...).

    Attributes:
        output_dim: feature size (timm's ``head_hidden_size`` or ``num_features``).
        input_size: (C, H, W) of :meth:`example_inputs` (the size a fixed-size model needs).

    Inputs: images (N, in_chans, H, W), float (uint8 is divided by 255); (N, H, W) when
    ``in_chans`` is 1. Output: (N, output_dim).
    """

    def __init__(
        self,
        model: str = "resnet18",
        in_chans: int = 3,
        img_size: int | Sequence[int] | None = None,
        weights: str | Path | None = None,
        weights_prefix: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        import timm

        if not isinstance(model, str) or not model:
            raise ValueError(f"timm: model must be a timm architecture name, got {model!r}")
        if model.startswith(("hf-hub:", "hf_hub:", "local-dir:")):
            raise ValueError(
                f"timm: {model!r} would load from the hub or a folder; pass the architecture "
                "name as model= and a local file as weights= (nothing is downloaded)"
            )
        if not timm.is_model(model):
            raise ValueError(f"timm: unknown model {model!r}{_suggestions(model)}")
        bad = [k for k in _FORBIDDEN if k in kwargs]
        if bad:
            raise ValueError(
                f"timm: {', '.join(bad)} cannot be set: the encoder is always built with "
                "pretrained=False and num_classes=0; load weights with weights=<local file>"
            )
        check_int(in_chans, "in_chans", "timm")
        if img_size is not None:
            kwargs["img_size"] = img_size
        try:
            self.model = timm.create_model(
                model, pretrained=False, num_classes=0, in_chans=in_chans, **kwargs
            )
        except TypeError as exc:
            if img_size is not None and "img_size" in str(exc):
                raise ValueError(
                    f"timm: {model} does not take img_size (it accepts any input size); "
                    "leave img_size out"
                ) from None
            raise
        self.name, self.in_chans = model, in_chans
        self.output_dim = int(
            getattr(self.model, "head_hidden_size", None) or self.model.num_features
        )
        cfg = self.model.pretrained_cfg or {}
        self.fixed_size = bool(cfg.get("fixed_input_size")) and not getattr(
            self.model, "dynamic_img_size", False
        )
        if img_size is not None:
            hw = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        elif self.fixed_size:
            hw = tuple(cfg.get("input_size", (3, 224, 224))[1:])
        else:
            hw = (64, 64)  # any size works; small enough for quick checks
        self.input_size = (in_chans, int(hw[0]), int(hw[1]))
        if weights is not None:
            self.load_weights(weights, prefix=weights_prefix)

    def forward(self, x: Tensor) -> Tensor:
        dtype = next(self.model.parameters()).dtype
        x = image_batch(x, self.in_chans, dtype, f"timm {self.name}")
        if self.fixed_size and tuple(x.shape[-2:]) != self.input_size[1:]:
            raise ValueError(
                f"timm {self.name}: built for {self.input_size[1]} x {self.input_size[2]} "
                f"images, got {x.shape[-2]} x {x.shape[-1]}; pass img_size= (or "
                "dynamic_img_size=True) when building it"
            )
        return self.model(x)

    def example_inputs(self, n: int = 2) -> Tensor:
        """``n`` random images of :attr:`input_size` in [0, 1]."""
        return torch.rand(n, *self.input_size)

    def load_weights(self, path: str | Path, prefix: str | None = None) -> None:
        """Load a local safetensors file or checkpoint into the model (see the class doc)."""
        from timm.models import load_state_dict

        path = Path(path).expanduser()
        if not path.is_file():
            raise WeightsNotFoundError(
                f"timm {self.name}: weights file {str(path)!r} does not exist; weights= takes a "
                "local .safetensors file or a timm/torch checkpoint (nothing is downloaded)"
            )
        try:
            state = load_state_dict(str(path), use_ema=False)
        except Exception as exc:
            raise ValueError(
                f"timm {self.name}: could not read weights from {str(path)!r}: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        state = self._match_keys(dict(state), prefix, path)
        try:
            self.model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ValueError(
                f"timm {self.name}: the weights in {str(path)!r} do not fit this model: {exc}"
            ) from None

    def _match_keys(
        self, state: dict[str, Tensor], prefix: str | None, path: Path
    ) -> dict[str, Tensor]:
        own = self.model.state_dict()
        if prefix is None:
            prefix = _find_prefix(state, own)
        if prefix:
            state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            if not state:
                raise ValueError(
                    f"timm {self.name}: no key of {str(path)!r} starts with {prefix!r}"
                )
        cfg = self.model.pretrained_cfg or {}
        heads = _as_tuple(cfg.get("classifier"))
        state = {
            k: v
            for k, v in state.items()
            if k in own or not any(k == h or k.startswith(h + ".") for h in heads)
        }
        for conv in _as_tuple(cfg.get("first_conv")):
            key = conv + ".weight"
            w = state.get(key)
            if w is not None and key in own and w.dim() == 4 and w.shape[1] == 3 != self.in_chans:
                from timm.models import adapt_input_conv  # as timm adapts pretrained RGB weights

                state[key] = adapt_input_conv(self.in_chans, w.float()).to(w.dtype)
        return state

    def extra_repr(self) -> str:
        return f"model={self.name!r}, in_chans={self.in_chans}, output_dim={self.output_dim}"


def _as_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def _find_prefix(state: Mapping[str, Tensor], own: Mapping[str, Tensor]) -> str:
    """The shortest prefix p such that p + (the model's first key) is in the file; '' when
    the file's keys are the model's already (or nothing matches: strict loading reports it)."""
    if not own or any(k in state for k in own):
        return ""
    anchor = next(iter(own))
    found = {k[: -len(anchor)] for k in state if k.endswith("." + anchor)}
    if not found:
        return ""
    shortest = min(len(p) for p in found)
    best = sorted(p for p in found if len(p) == shortest)
    if len(best) > 1:
        raise ValueError(
            f"the weights file holds several models ({', '.join(best)}); pick one with "
            "weights_prefix="
        )
    return best[0]
