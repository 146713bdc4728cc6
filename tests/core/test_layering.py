"""The core imports no plugin package: every module under core/manyview, parsed with ``ast``,
names no ``manyview_*`` package in an ``import`` or ``from`` statement (at module level or
inside a function) nor in an ``importlib.import_module`` call. Plugins depend on the core,
never the other way round."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "core" / "manyview"
MODULES = sorted(CORE.rglob("*.py"))


def _is_plugin_package(module: str | None) -> bool:
    return bool(module) and module.split(".")[0].startswith("manyview_")


def plugin_imports(source: str) -> list[tuple[int, str]]:
    """``(line, module)`` of every import of a ``manyview_*`` package in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if _is_plugin_package(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            if _is_plugin_package(node.module):
                found.append((node.lineno, str(node.module)))
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            arg = node.args[0]
            if (
                name in ("import_module", "__import__")
                and isinstance(arg, ast.Constant)
                and isinstance(arg.value, str)
                and _is_plugin_package(arg.value)
            ):
                found.append((node.lineno, arg.value))
    return found


def test_the_walk_finds_every_form():
    source = (
        "import manyview_speech\n"
        "import os, manyview_text.prompts as p\n"
        "from manyview_vision.views import Rotation\n"
        "from manyview import registry\n"
        "from . import sibling\n"
        "def f():\n"
        "    from manyview_digits3.datasets import digits3\n"
        "    import importlib\n"
        "    return importlib.import_module('manyview_clip.pair')\n"
    )
    assert [m for _, m in plugin_imports(source)] == [
        "manyview_speech",
        "manyview_text.prompts",
        "manyview_vision.views",
        "manyview_digits3.datasets",
        "manyview_clip.pair",
    ]


def test_the_core_has_modules_to_walk():
    assert len(MODULES) > 50 and CORE / "cli.py" in MODULES


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(CORE)))
def test_core_module_imports_no_plugin_package(path):
    found = plugin_imports(path.read_text(encoding="utf-8"))
    assert not found, (
        f"core/manyview/{path.relative_to(CORE)} imports a plugin package: "
        + ", ".join(f"line {line}: {module}" for line, module in found)
        + ". Move the code to that plugin, or into the core, or reach it through the registry"
    )
