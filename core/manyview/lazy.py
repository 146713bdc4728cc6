"""Names a package re-exports from its modules, each module imported on first use.

A package whose modules import torch can still be imported in milliseconds: its
``__init__`` says which module holds each name it re-exports, and that module is imported
when the name is first read (:pep:`562`'s module ``__getattr__``)::

    __getattr__, __dir__, __all__ = lazy_exports(
        __name__, {"MyLoss": "my_plugin.losses", "MyView": "my_plugin.views"}
    )

This module imports nothing beyond the standard library.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    module_name: str, exports: Mapping[str, str], /
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``(__getattr__, __dir__, __all__)`` for the module ``module_name`` (its ``__name__``).

    ``exports`` maps each re-exported name to the full dotted name of the module that
    defines it. Reading one of those names on the module imports that module, keeps the
    value in the module's namespace (the next read is a plain attribute) and returns it;
    any other name raises ``AttributeError`` as a module does. ``__dir__`` lists the
    module's namespace and every exported name; ``__all__`` is the exported names, sorted.
    """
    where = dict(exports)

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[module_name], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[module_name]), *where})

    return __getattr__, __dir__, sorted(where)
