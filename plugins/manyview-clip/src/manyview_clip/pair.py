"""A whole open_clip CLIP model as a pair of manyview encoders that share it: the image
tower (``open_clip_image``, this package) and the text tower (``open_clip_text``,
manyview-text)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from manyview_clip.encoders.open_clip_image import OpenCLIPImage
from manyview_text.encoders.open_clip_text import OpenCLIPText
from manyview_text.models import build_clip

__all__ = ["OpenCLIPPair", "open_clip_pair"]


@dataclass(frozen=True, eq=False)
class OpenCLIPPair:
    """One open_clip CLIP model and its two towers as manyview encoders.

    ``image`` and ``text`` hold ``model.visual`` and ``model.text`` themselves (not copies):
    training either trains ``model``, and ``model`` can be saved, loaded or frozen as usual.
    The towers share no parameter, so the two encoders can sit in one ``nn.ModuleDict`` (a
    recipe's encoders) and be saved with safetensors.

    Attributes:
        model: the ``open_clip.CustomTextCLIP`` (``encode_image``, ``encode_text``,
            ``logit_scale``, ``forward(image, tokens)``).
        image: an :class:`~manyview_clip.encoders.open_clip_image.OpenCLIPImage` on ``model.visual``.
        text: an :class:`~manyview_text.encoders.open_clip_text.OpenCLIPText` on ``model.text``.
        config: the resolved open_clip config.
    """

    model: nn.Module
    image: OpenCLIPImage
    text: OpenCLIPText
    config: dict[str, Any]

    @property
    def logit_scale(self) -> Tensor:
        """The model's learned logit scale ``exp(t)`` (CLIP: 100 after training)."""
        return self.model.logit_scale.exp()

    def encoders(self) -> dict[str, nn.Module]:
        """``{"image": image, "text": text}``, keyed by modality."""
        return {"image": self.image, "text": self.text}

    def logits(self, images: Any, texts: Any) -> Tensor:
        """CLIP's image-to-text logits ``scale · ⟨û_i, v̂_j⟩`` (N_images, N_texts)."""
        u = nn.functional.normalize(self.image(images), dim=-1)
        v = nn.functional.normalize(self.text(texts), dim=-1)
        return self.logit_scale * u @ v.T


def open_clip_pair(
    model: str | Mapping[str, Any] = "tiny",
    *,
    checkpoint: str | Path | None = None,
    embed_dim: int | None = None,
    vision_cfg: Mapping[str, Any] | None = None,
    text_cfg: Mapping[str, Any] | None = None,
    dropout: float = 0.0,
    attn_dropout: float = 0.0,
    normalize: bool = False,
) -> OpenCLIPPair:
    """Build one open_clip CLIP model and return it with its image and text encoders.

    Args:
        model (`str` or `dict`, defaults to ``"tiny"``): the config, see
            :func:`manyview_text.models.model_config`.
        checkpoint (`str`, *optional*): a local open_clip checkpoint (both towers and the
            logit scale); nothing is downloaded.
        embed_dim, vision_cfg, text_cfg: config overrides.
        dropout, attn_dropout: the text encoder's dropout (see ``open_clip_text``).
        normalize: L2-normalise both encoders' outputs.

    Example::

        pair = open_clip_pair("ViT-B-32", checkpoint="/models/vit-b-32.safetensors")
        teacher = pair.model.eval().requires_grad_(False)  # e.g. a frozen CLIP teacher
        img, txt = pair.image(images), pair.text(["a photo of the digit 7"])
    """
    clip = build_clip(
        model,
        checkpoint=checkpoint,
        embed_dim=embed_dim,
        vision_cfg=vision_cfg,
        text_cfg=text_cfg,
    )
    return OpenCLIPPair(
        model=clip,
        image=OpenCLIPImage.from_clip(clip, normalize=normalize),
        text=OpenCLIPText.from_clip(
            clip, dropout=dropout, attn_dropout=attn_dropout, normalize=normalize
        ),
        config=clip.manyview_config,
    )
