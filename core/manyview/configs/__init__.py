"""Named run configurations (the registry kind ``config``), and the core's own.

A plugin ships its configurations as TOML files inside its package and registers each one
with ``manyview_register_configs``; the factory, called with no arguments, returns the file's
path (:func:`packaged_file` finds it with ``importlib.resources``)::

    @manyview.hookimpl
    def manyview_register_configs(register):
        register("my-run", "my_plugin.configs:my_run", summary="what it trains")

``manyview train NAME`` and ``manyview demo`` find them by name (:func:`resolve`), and
``manyview list config`` lists them. The core registers ``quickstart`` (built-ins only).

This module imports no torch.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

__all__ = ["packaged_file", "quickstart", "resolve"]


def packaged_file(package: str, filename: str) -> Path:
    """The path of ``filename`` shipped inside ``package`` (package data).

    Raises:
        FileNotFoundError: the installed package does not hold it; reinstall the package.
    """
    path = resources.files(package) / filename
    if not path.is_file():
        raise FileNotFoundError(
            f"{package} has no file {filename!r}: the installation is incomplete; reinstall it"
        )
    return Path(str(path))


def quickstart() -> Path:
    """Two vector modalities of the synthetic dataset, four views, one mv_dhel call."""
    return packaged_file(__name__, "quickstart.toml")


def resolve(config: str | os.PathLike[str]) -> Path:
    """The TOML file to train from: ``config`` itself when it is a file or a path, else the
    configuration registered under that name (``"quickstart"``; ``"quickstart.toml"`` too).

    Raises:
        ConfigError: ``config`` is a bare name that no installed plugin registers (with
            close-match suggestions), or its registration gives no file.
    """
    from manyview.config import ConfigError

    path = Path(config)
    text = os.fspath(config)
    if path.is_file() or os.sep in text or "/" in text:
        return path  # a path: reading it reports a missing file
    name = text.removesuffix(".toml")
    import manyview
    from manyview.registry import RegistryError

    try:
        entry = manyview.entry("config", name)
        found = manyview.create("config", name)
    except RegistryError as exc:
        raise ConfigError(
            f"{text}: no such configuration file, nor a registered configuration ({exc})"
        ) from None
    if not isinstance(found, str | os.PathLike) or not Path(found).is_file():
        raise ConfigError(
            f"config {name!r} of plugin {entry.plugin!r} gives {found!r}, not a TOML file; "
            f"reinstall or update {entry.plugin}"
        )
    return Path(found)
