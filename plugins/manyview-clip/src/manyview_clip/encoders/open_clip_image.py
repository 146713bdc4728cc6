"""The image tower of an open_clip CLIP model as a manyview encoder: the partner of
``open_clip_text`` for CLIP training and CLIP distillation."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from manyview_text.models import build_clip

__all__ = ["OpenCLIPImage"]


class OpenCLIPImage(nn.Module):
    """open_clip's image tower: images (N, C, H, W) to features (N, output_dim).

    Built from the same configs as ``open_clip_text`` (default ``"tiny"``: a ViT 64 wide,
    2 layers, 8-pixel patches on 32-pixel images, 64-d output). The preprocessing open_clip
    does on PIL images is done here on batches: uint8 images are scaled to [0, 1], one
    channel is repeated to three, the images are resized to the tower's size and
    normalised with the config's mean and std (OpenAI's by default).

    Args:
        model (`str` or `dict`, defaults to ``"tiny"``): the CLIP config, see
            :func:`manyview_text.models.model_config`.
        checkpoint (`str`, *optional*): a local open_clip checkpoint of that config (only its
            image tower is used).
        image_size (`int`, *optional*): the tower's input size (default: the config's).
        embed_dim (`int`, *optional*): the output size (default: the config's).
        normalize (`bool`, defaults to `False`): L2-normalise the output.
        preprocess (`bool`, defaults to `True`): scale, resize and normalise the images
            here; set `False` when the views already did (e.g. ``image_normalize`` with the
            config's mean and std, at the tower's size).
        vision_cfg (`dict`, *optional*): any other ``open_clip.CLIPVisionCfg`` overrides.

    Inputs: (N, C, H, W) or (N, H, W) images, float in [0, 1] or uint8, C = 1 or 3 (with
    ``preprocess=False``: the tower's input, float (N, 3, H, W)).
    Output: ``(N, output_dim)`` float.
    """

    def __init__(
        self,
        model: str | Mapping[str, Any] = "tiny",
        *,
        checkpoint: str | Path | None = None,
        image_size: int | None = None,
        embed_dim: int | None = None,
        normalize: bool = False,
        preprocess: bool = True,
        vision_cfg: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        overrides = dict(vision_cfg or {})
        if image_size is not None:
            overrides["image_size"] = image_size
        clip = build_clip(model, checkpoint=checkpoint, embed_dim=embed_dim, vision_cfg=overrides)
        self._setup(clip.visual, normalize, preprocess)

    @classmethod
    def from_clip(
        cls, clip: nn.Module, *, normalize: bool = False, preprocess: bool = True
    ) -> OpenCLIPImage:
        """The image encoder of an existing open_clip model (its ``visual`` tower, shared,
        not copied). See :func:`manyview_clip.open_clip_pair`."""
        tower = getattr(clip, "visual", None)
        if not isinstance(tower, nn.Module):
            raise ValueError(
                "from_clip: expects an open_clip model with an image tower (clip.visual)"
            )
        self = cls.__new__(cls)
        nn.Module.__init__(self)
        self._setup(tower, normalize, preprocess)
        return self

    def _setup(self, tower: nn.Module, normalize: bool, preprocess: bool) -> None:
        import open_clip

        self.tower = tower
        cfg = getattr(tower, "preprocess_cfg", {}) or {}
        size = cfg.get("size", getattr(tower, "image_size", 224))
        self.image_size: tuple[int, int] = (size, size) if isinstance(size, int) else tuple(size)
        mean = cfg.get("mean", open_clip.OPENAI_DATASET_MEAN)
        std = cfg.get("std", open_clip.OPENAI_DATASET_STD)
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)
        self.normalize = bool(normalize)
        self.preprocess_inputs = bool(preprocess)
        self.output_dim: int = int(getattr(tower, "output_dim", 0) or self._probe_dim())

    def _probe_dim(self) -> int:
        with torch.no_grad():
            return int(self.tower(torch.zeros(1, 3, *self.image_size)).shape[-1])

    def preprocess(self, images: Any) -> Tensor:
        """The tower's input (N, 3, H, W) from a batch of images (see the class docstring)."""
        if not isinstance(images, Tensor) or images.dim() not in (3, 4) or images.shape[0] == 0:
            shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
            raise ValueError(
                f"open_clip_image: expects images (N, C, H, W) or (N, H, W), got {shape}"
            )
        x = images if images.dim() == 4 else images[:, None]
        if x.shape[1] not in (1, 3):
            raise ValueError(
                f"open_clip_image: expects 1 or 3 channels in (N, C, H, W), got {x.shape[1]} "
                f"(shape {tuple(images.shape)}; channels-last images need .permute(0, 3, 1, 2))"
            )
        dtype = self.mean.dtype
        if x.dtype == torch.uint8:
            x = x.to(dtype) / 255.0
        elif x.is_floating_point():
            x = x.to(dtype)
        else:
            raise ValueError(f"open_clip_image: expects float or uint8 images, got {x.dtype}")
        x = x.to(self.mean.device)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if tuple(x.shape[-2:]) != self.image_size:
            down = x.shape[-1] > self.image_size[1] or x.shape[-2] > self.image_size[0]
            x = F.interpolate(x, size=self.image_size, mode="bilinear", antialias=down)
        return (x - self.mean) / self.std

    def forward(self, images: Any) -> Tensor:
        if self.preprocess_inputs:
            x = self.preprocess(images)
        elif isinstance(images, Tensor) and images.dim() == 4 and images.is_floating_point():
            x = images
        else:
            shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
            raise ValueError(
                f"open_clip_image: with preprocess=False expects float images (N, 3, H, W), got {shape}"
            )
        out = self.tower(x)
        if isinstance(out, tuple):  # output_tokens=True towers return (pooled, tokens)
            out = out[0]
        return F.normalize(out, dim=-1) if self.normalize else out

    def example_inputs(self, n: int = 2) -> Tensor:
        """``n`` random images (n, 3, H, W) in [0, 1] at the tower's size (fixed seed)."""
        return torch.rand(n, 3, *self.image_size, generator=torch.Generator().manual_seed(0))

    def extra_repr(self) -> str:
        return f"image_size={self.image_size}, output_dim={self.output_dim}, normalize={self.normalize}"
