"""Registers manyview-diffusion's entries (entry-point group ``manyview``).

Factories are ``"module:Attr"`` strings, so ``manyview list`` imports neither torch nor
diffusers.
"""

from __future__ import annotations

from typing import Any

import manyview

ENCODERS: dict[str, dict[str, Any]] = {
    "ddae_unet": {
        "factory": "manyview_diffusion.encoders.ddae:DDAEUNet",
        "summary": "DDAE: a diffusers UNet's block, noised at a fixed t, pooled (Xiang et al. 2023)",
    },
    "ddae_dit": {
        "factory": "manyview_diffusion.encoders.ddae:DDAEDiT",
        "summary": "DDAE: a diffusers DiT block's tokens, noised at a fixed t, averaged",
    },
}
"""The DDAE feature encoders (image); :func:`manyview.register_all` registers them."""


@manyview.hookimpl
def manyview_register_encoders(register: Any) -> None:
    manyview.register_all(register, ENCODERS, modality="image")


RECIPES: dict[str, Any] = {
    "diffusion": (
        "manyview_diffusion.recipes.diffusion:DiffusionRecipe",
        "A diffusers network trained by DDPM/EDM/flow matching, read as DDAE features; "
        "self-conditioning, MoCo v3, REPA as switches",
    ),
}
"""The training recipes."""


@manyview.hookimpl
def manyview_register_recipes(register: Any) -> None:
    manyview.register_all(register, RECIPES)


CONFIGS: dict[str, Any] = {
    "ddae": (
        "manyview_diffusion.configs:ddae",
        "digits: DDAE, a UNet trained by DDPM, read as features",
    ),
    "ddae_selfcond": (
        "manyview_diffusion.configs:ddae_selfcond",
        "digits: DDAE++ self-conditioning (bottleneck features into the decoder's time embedding)",
    ),
    "ddae_selfcond_moco": (
        "manyview_diffusion.configs:ddae_selfcond_moco",
        "digits: DDAE++ self-conditioning plus the MoCo-v3 self-distillation term",
    ),
    "repa": (
        "manyview_diffusion.configs:repa",
        "digits: DDPM with representation alignment (REPA) to a frozen image encoder",
    ),
}
"""The run configurations on scikit-learn's digits."""


@manyview.hookimpl
def manyview_register_configs(register: Any) -> None:
    manyview.register_all(register, CONFIGS)


BENCHMARKS: dict[str, Any] = {
    "diffusion_probe": {
        "factory": "manyview_diffusion.benchmarks.diffusion_probe:run",
        "summary": "DDAE's probe: linear probe and kNN over (block, noise level), vs random-init",
        "requires": "manyview_diffusion.benchmarks.diffusion_probe:DDAEFeatures",
        "example_run": "manyview_diffusion.benchmarks.diffusion_probe:example_run",
    },
}
"""The benchmarks (``manyview bench --suite diffusion_probe``)."""


@manyview.hookimpl
def manyview_register_benchmarks(register: Any) -> None:
    manyview.register_all(register, BENCHMARKS)


@manyview.hookimpl
def manyview_register_commands(register: Any) -> None:
    register(
        "sample",
        "manyview_diffusion.commands:run",
        configure="manyview_diffusion.commands:configure",
        help="a PNG grid of images sampled from a trained run that generates images",
    )
