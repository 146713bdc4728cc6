"""Build open_clip CLIP models offline, from a config and, optionally, a local checkpoint.

A model is named by one of:

- manyview-text's own sizes, :data:`CONFIGS` (``"tiny"``: 64 wide, 2 + 2 layers, 32-token
  context, 32-pixel images; trains on a CPU in minutes);
- any open_clip config name that uses open_clip's own BPE tokenizer (``"ViT-B-32"``,
  ``"RN50"``, ``"ViT-L-14"``, ...: ``open_clip.list_models()``);
- ``"local-dir:<folder>"``: a folder with an ``open_clip_config.json`` (and usually the
  weights next to it), as open_clip writes them;
- a config dict ``{"embed_dim": ..., "vision_cfg": {...}, "text_cfg": {...}}``.

Weights come only from a local file (``checkpoint=``: ``.pt``, ``.pth``, ``.bin`` or
``.safetensors``, open_clip's or OpenAI's key layout); nothing is ever downloaded. Without
one the model is randomly initialised.

Every model is built as ``open_clip.CustomTextCLIP``, whose image and text towers are the two
submodules ``visual`` and ``text``; checkpoints in the plain ``CLIP`` layout are converted
on load by ``open_clip.load_checkpoint``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from manyview import did_you_mean
from manyview.options import check_int

__all__ = ["CONFIGS", "build_clip", "model_config"]

CONFIGS: dict[str, dict[str, Any]] = {
    "tiny": {
        "embed_dim": 64,
        "vision_cfg": {
            "image_size": 32,
            "patch_size": 8,
            "width": 64,
            "layers": 2,
            "head_width": 32,
        },
        "text_cfg": {
            "context_length": 32,
            "vocab_size": 49408,
            "width": 64,
            "heads": 4,
            "layers": 2,
        },
    },
    "small": {
        "embed_dim": 128,
        "vision_cfg": {
            "image_size": 32,
            "patch_size": 4,
            "width": 128,
            "layers": 4,
            "head_width": 32,
        },
        "text_cfg": {
            "context_length": 32,
            "vocab_size": 49408,
            "width": 128,
            "heads": 4,
            "layers": 4,
        },
    },
}
"""manyview-text's own CPU-sized configs, in open_clip's config format."""

BPE_VOCAB_SIZE = 49408
"""The size of open_clip's own BPE vocabulary (``SimpleTokenizer``), shipped with the package."""

_CHECKPOINT_NAMES = (
    "open_clip_model.safetensors",
    "open_clip_pytorch_model.safetensors",
    "open_clip_pytorch_model.bin",
    "open_clip_pytorch_model.pth",
    "model.safetensors",
    "pytorch_model.bin",
    "model.pth",
    "model.pt",
)


def _merge(base: dict[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    out = dict(base)
    out.update(overrides or {})
    return out


def model_config(
    model: str | Mapping[str, Any] = "tiny",
    *,
    embed_dim: int | None = None,
    vision_cfg: Mapping[str, Any] | None = None,
    text_cfg: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The open_clip config ``model`` names, with overrides merged into its sub-configs.

    Args:
        model (`str` or `dict`, defaults to ``"tiny"``): a name of :data:`CONFIGS`, an
            open_clip config name, ``"local-dir:<folder>"`` or a config dict.
        embed_dim (`int`, *optional*): the shared embedding size (the towers' output size).
        vision_cfg (`dict`, *optional*): keys of ``open_clip.CLIPVisionCfg`` to override.
        text_cfg (`dict`, *optional*): keys of ``open_clip.CLIPTextCfg`` to override
            (``context_length``, ``width``, ``heads``, ``layers``, ...).

    Returns:
        A new dict with ``embed_dim``, ``vision_cfg``, ``text_cfg`` and any other keys of the
        config (``quick_gelu``, ``init_logit_bias``, ...).

    Raises:
        ValueError: an unknown name (with close matches), a Hugging Face hub name (a
            download), or a config that needs another tokenizer than open_clip's BPE.
    """
    if isinstance(model, Mapping):
        cfg = copy.deepcopy(dict(model))
        where = "the config dict"
    elif isinstance(model, str):
        cfg = _named_config(model)
        where = repr(model)
    else:
        raise ValueError(
            f"model must be a config name or a config dict, not {type(model).__name__}"
        )
    for key in ("vision_cfg", "text_cfg"):
        if not isinstance(cfg.get(key), Mapping):
            raise ValueError(f"{where}: the config has no {key} table")
    if "embed_dim" not in cfg:
        raise ValueError(f"{where}: the config has no embed_dim")
    if "multimodal_cfg" in cfg:
        raise ValueError(
            f"{where} is a CoCa model (it has a multimodal_cfg); manyview-text builds "
            "contrastive CLIP models only"
        )
    cfg["vision_cfg"] = _merge(dict(cfg["vision_cfg"]), vision_cfg)
    cfg["text_cfg"] = _merge(dict(cfg["text_cfg"]), text_cfg)
    if embed_dim is not None:
        cfg["embed_dim"] = embed_dim
    text = cfg["text_cfg"]
    if text.get("hf_model_name") or text.get("hf_tokenizer_name"):
        name = text.get("hf_model_name") or text.get("hf_tokenizer_name")
        raise ValueError(
            f"{where} uses a Hugging Face text model or tokenizer ({name!r}), which needs a "
            "download; manyview-text supports open_clip's own text transformer and BPE tokenizer"
        )
    if text.get("vocab_size", BPE_VOCAB_SIZE) != BPE_VOCAB_SIZE:
        raise ValueError(
            f"{where}: text vocab_size {text['vocab_size']} differs from open_clip's BPE "
            f"vocabulary ({BPE_VOCAB_SIZE} tokens), so its tokenizer is not supported here"
        )
    for key in ("width", "heads", "layers", "context_length"):
        if text.get(key) is not None:
            check_int(text[key], f"text_cfg.{key}", None)
    width, heads = text.get("width", 512), text.get("heads", 8)
    if width % heads:
        raise ValueError(f"text_cfg.width ({width}) must be divisible by text_cfg.heads ({heads})")
    if cfg["vision_cfg"].get("timm_model_name"):
        cfg["vision_cfg"]["timm_model_pretrained"] = False  # never download timm weights
    return cfg


def _named_config(name: str) -> dict[str, Any]:
    import open_clip

    if name in CONFIGS:
        return copy.deepcopy(CONFIGS[name])
    if name.startswith("hf-hub:"):
        raise ValueError(
            f"model {name!r} would be downloaded from the Hugging Face hub; manyview-text works "
            "offline. Download it once (open_clip.create_model_and_transforms) and pass "
            "'local-dir:<folder>', or the config name and checkpoint='<file>'"
        )
    if name.startswith("local-dir:"):
        folder = Path(name[len("local-dir:") :]).expanduser()
        path = folder / "open_clip_config.json"
        if not path.is_file():
            raise ValueError(f"model {name!r}: {path} does not exist")
        with path.open(encoding="utf-8") as f:
            data = json.load(f)
        return dict(data.get("model_cfg", data))
    cfg = open_clip.get_model_config(name.replace("/", "-"))
    if cfg is None:
        known = [*CONFIGS, *open_clip.list_models()]
        hint = did_you_mean(name, known) or "."
        raise ValueError(
            f"unknown open_clip model {name!r}{hint} Use one of {sorted(CONFIGS)}, a name from "
            "open_clip.list_models(), 'local-dir:<folder>' or a config dict"
        )
    return cfg


def _local_dir_checkpoint(model: Any) -> str | None:
    if not (isinstance(model, str) and model.startswith("local-dir:")):
        return None
    folder = Path(model[len("local-dir:") :]).expanduser()
    for name in _CHECKPOINT_NAMES:
        if (folder / name).is_file():
            return str(folder / name)
    return None


def build_clip(
    model: str | Mapping[str, Any] = "tiny",
    *,
    checkpoint: str | Path | None = None,
    embed_dim: int | None = None,
    vision_cfg: Mapping[str, Any] | None = None,
    text_cfg: Mapping[str, Any] | None = None,
) -> nn.Module:
    """An ``open_clip.CustomTextCLIP`` (towers ``visual`` and ``text``), weights from a
    local checkpoint or random.

    Args:
        model: see :func:`model_config`. A ``"local-dir:<folder>"`` model loads the weights
            found in its folder unless ``checkpoint`` is given.
        checkpoint (`str`, *optional*): a local weights file (never a download).
        embed_dim, vision_cfg, text_cfg: overrides, see :func:`model_config`. With a
            checkpoint, the sizes must fit it (a longer or shorter ``context_length`` is
            fine: the positional embedding is resized).

    The resolved config is kept as ``model.manyview_config``.

    Raises:
        ValueError: a bad config (see :func:`model_config`), a checkpoint that is not a local
            file, or one whose tensors do not fit the config.
    """
    import open_clip

    cfg = model_config(model, embed_dim=embed_dim, vision_cfg=vision_cfg, text_cfg=text_cfg)
    kwargs = {k: v for k, v in cfg.items() if k != "custom_text"}
    try:
        clip = open_clip.CustomTextCLIP(**kwargs)
    except TypeError as exc:
        raise ValueError(
            f"model {_name(model)}: the config does not fit open_clip: {exc}"
        ) from None
    size = clip.visual.image_size
    preprocess = {
        "size": size,
        "mean": open_clip.OPENAI_DATASET_MEAN,
        "std": open_clip.OPENAI_DATASET_STD,
    }
    if isinstance(model, str) and model.startswith("local-dir:"):
        path = Path(model[len("local-dir:") :]).expanduser() / "open_clip_config.json"
        preprocess.update(json.loads(path.read_text(encoding="utf-8")).get("preprocess_cfg", {}))
    elif isinstance(model, Mapping):
        preprocess.update(model.get("preprocess_cfg", {}))
    open_clip.set_model_preprocess_cfg(clip, preprocess)
    path = checkpoint if checkpoint is not None else _local_dir_checkpoint(model)
    if path is not None:
        load_weights(clip, path, where=f"model {_name(model)}")
    clip.manyview_config = cfg
    return clip


def load_weights(clip: nn.Module, checkpoint: str | Path, *, where: str = "model") -> None:
    """Load a local open_clip checkpoint into ``clip`` in place (``open_clip.load_checkpoint``:
    key conversions, positional-embedding resizing), with readable errors."""
    import open_clip

    path = Path(checkpoint).expanduser()
    if not path.is_file():
        raise ValueError(
            f"{where}: checkpoint {str(checkpoint)!r} is not a local file. manyview-text never "
            "downloads weights: pass the path of an open_clip checkpoint (.pt, .pth, .bin or "
            ".safetensors)"
        )
    try:
        open_clip.load_checkpoint(clip, str(path))
    except (RuntimeError, AssertionError, KeyError, ValueError) as exc:
        lines = str(exc).strip().splitlines() or [type(exc).__name__]
        detail = " ".join(line.strip() for line in lines[:4])
        raise ValueError(
            f"{where}: checkpoint {str(path)!r} does not fit this config ({detail}). Use the "
            "config the checkpoint was trained with"
        ) from None


def _name(model: Any) -> str:
    return repr(model) if isinstance(model, str) else "(config dict)"
