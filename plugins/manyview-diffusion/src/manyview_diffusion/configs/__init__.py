"""manyview-diffusion's run configurations on scikit-learn's digits, shipped as TOML files
next to this module.

Each function returns its file's path (the registry kind ``config``): ``manyview train
ddae`` trains one, ``manyview list config`` lists them. Override keys with ``--set``
(``manyview train ddae --set run.steps=100``), or copy the file a function returns.
"""

from __future__ import annotations

from pathlib import Path

from manyview.configs import packaged_file

__all__ = ["ddae", "ddae_selfcond", "ddae_selfcond_moco", "repa"]


def ddae() -> Path:
    """DDAE: a UNet trained by DDPM on digits, read as features."""
    return packaged_file(__name__, "ddae.toml")


def ddae_selfcond() -> Path:
    """DDAE++ self-conditioning on digits."""
    return packaged_file(__name__, "ddae_selfcond.toml")


def ddae_selfcond_moco() -> Path:
    """DDAE++ self-conditioning and the MoCo-v3 self-distillation term on digits."""
    return packaged_file(__name__, "ddae_selfcond_moco.toml")


def repa() -> Path:
    """DDPM on digits with representation alignment (REPA) to a frozen encoder."""
    return packaged_file(__name__, "repa.toml")
