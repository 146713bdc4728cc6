"""Building diffusers networks offline: from a dict of constructor arguments over tiny
defaults (CPU, milliseconds) or from a local ``save_pretrained`` folder.

Nothing here downloads: a folder is read with ``local_files_only=True``.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from manyview.options import check_positive

__all__ = ["TINY_CONFIGS", "build_network", "load_network", "unwrap_network"]

TINY_CONFIGS: dict[str, dict[str, Any]] = {
    "UNet2DModel": {
        "sample_size": 16,
        "in_channels": 3,
        "out_channels": 3,
        "block_out_channels": (32, 64),
        "layers_per_block": 1,
        "down_block_types": ("DownBlock2D", "AttnDownBlock2D"),
        "up_block_types": ("AttnUpBlock2D", "UpBlock2D"),
        "norm_num_groups": 8,
        "attention_head_dim": 8,
    },
    "UNet2DConditionModel": {
        "sample_size": 8,
        "in_channels": 4,
        "out_channels": 4,
        "down_block_types": ("CrossAttnDownBlock2D", "DownBlock2D"),
        "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D"),
        "block_out_channels": (32, 64),
        "layers_per_block": 1,
        "cross_attention_dim": 32,
        "attention_head_dim": 8,
        "norm_num_groups": 32,
    },
    "DiTTransformer2DModel": {
        "num_attention_heads": 2,
        "attention_head_dim": 16,
        "in_channels": 3,
        "out_channels": 3,
        "num_layers": 2,
        "sample_size": 8,
        "patch_size": 2,
        "num_embeds_ada_norm": 10,
    },
}
"""Tiny constructor arguments per diffusers class (a UNet of 702k parameters on 16×16
images, a conditional UNet on 8×8×4 latents, a 2-layer DiT of 60k on 8×8 images): the
defaults that ``config`` options update."""


def ddpm_scheduler(
    num_train_timesteps: int,
    beta_start: float,
    beta_end: float,
    beta_schedule: str,
    who: str,
) -> Any:
    """diffusers' ``DDPMScheduler`` for these options, checked: positive betas and a
    ``beta_schedule`` it knows, else a one-line ValueError naming ``who``."""
    from diffusers import DDPMScheduler

    check_positive(beta_start, "beta_start", who)
    check_positive(beta_end, "beta_end", who)
    try:
        return DDPMScheduler(
            num_train_timesteps=num_train_timesteps,
            beta_start=float(beta_start),
            beta_end=float(beta_end),
            beta_schedule=beta_schedule,
        )
    except NotImplementedError:
        raise ValueError(
            f"{who}: beta_schedule {beta_schedule!r} is not one of diffusers "
            "DDPMScheduler's (linear, scaled_linear, squaredcos_cap_v2, sigmoid)"
        ) from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def build_network(
    network: str, config: Mapping[str, Any] | None = None, *, who: str, classes: Sequence[str]
) -> nn.Module:
    """The diffusers ``network`` class (one of ``classes``) built from
    :data:`TINY_CONFIGS` updated by ``config``; unknown keys and arguments diffusers refuses
    are one-line ``ValueError``\\ s naming the option."""
    from manyview import did_you_mean

    if network not in classes:
        raise ValueError(
            f"{who}: network must be one of {', '.join(classes)}, got {network!r}"
            f"{did_you_mean(str(network), classes)}"
        )
    if config is not None and not isinstance(config, Mapping):
        raise ValueError(
            f"{who}: config must be a table of {network} constructor arguments, got "
            f"{type(config).__name__}"
        )
    import diffusers

    cls = getattr(diffusers, network)
    params = inspect.signature(cls.__init__).parameters
    user = dict(config or {})
    unknown = [k for k in user if k not in params]
    if unknown:
        raise ValueError(
            f"{who}: config key {unknown[0]!r} is not an argument of diffusers {network}"
            f"{did_you_mean(unknown[0], [p for p in params if p != 'self'])}"
        )
    kwargs = {**TINY_CONFIGS[network], **user}
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError, AssertionError, KeyError) as error:
        raise ValueError(f"{who}: config: {network} refuses it: {_first_line(error)}") from None


def load_network(
    folder: str | Path, *, who: str, classes: Sequence[str], subfolder: str | None = None
) -> nn.Module:
    """The diffusers model saved in the local ``folder`` (``save_pretrained``'s output;
    ``subfolder`` for a model inside a pipeline folder, e.g. ``"unet"``), one of ``classes``.

    Raises one-line ``ValueError``\\ s for a missing folder, a folder without
    ``config.json``, a config of another class, and weights diffusers cannot load."""
    path = Path(folder).expanduser()
    if subfolder:
        path = path / subfolder
    if not path.is_dir():
        raise ValueError(
            f"{who}: pretrained folder {str(path)!r} does not exist; give a local folder "
            "written by save_pretrained (nothing is downloaded)"
        )
    config = path / "config.json"
    if not config.is_file():
        hint = ""
        if (path / "model_index.json").is_file():
            hint = " (it is a pipeline folder: set subfolder = 'unet' or 'transformer')"
        raise ValueError(
            f"{who}: {str(path)!r} is not a diffusers model folder: it has no config.json"
            f"{hint}; write one with model.save_pretrained(folder)"
        )
    try:
        meta = json.loads(config.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        where = f" (line {error.lineno})" if isinstance(error, json.JSONDecodeError) else ""
        raise ValueError(
            f"{who}: {str(config)!r} is not valid JSON{where}: re-save the model"
        ) from None
    name = meta.get("_class_name") if isinstance(meta, dict) else None
    if name not in classes:
        raise ValueError(
            f"{who}: {str(config)!r} describes a {name!r}, not one of {', '.join(classes)}; "
            "use the encoder for that class"
        )
    import diffusers

    try:
        return getattr(diffusers, name).from_pretrained(path, local_files_only=True)
    except (OSError, ValueError, RuntimeError, TypeError, KeyError) as error:
        raise ValueError(
            f"{who}: cannot load the {name} in {str(path)!r}: {_first_line(error)}"
        ) from None


def is_diffusers_model(module: object) -> bool:
    """Whether ``module`` is a diffusers model (a ``diffusers.ModelMixin``)."""
    return any(
        cls.__name__ == "ModelMixin" and cls.__module__.startswith("diffusers.")
        for cls in type(module).__mro__
    )


def unwrap_network(module: nn.Module) -> nn.Module:
    """The diffusers model inside ``module``: ``module`` itself, or the model its
    ``.network`` attributes lead to (the wrappers of this package and the DDAE encoders
    keep the model there); ``module`` when none is found."""
    inner, seen = module, set()
    while not is_diffusers_model(inner) and isinstance(getattr(inner, "network", None), nn.Module):
        if id(inner) in seen:
            break
        seen.add(id(inner))
        inner = inner.network
    return inner if is_diffusers_model(inner) else module
