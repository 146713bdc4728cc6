"""The layout of ``manyview.losses.engine``: the public API is re-exported explicitly, each
module imports only the modules before it in the package docstring's list (read from the
sources: no import cycle), only the kernel module imports triton, and importing the package
(and running a tiled loss on the CPU) does not."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import manyview.losses.engine as engine

PACKAGE = "manyview.losses.engine"
ROOT = Path(engine.__file__).parent
MODULES = sorted(p.stem for p in ROOT.glob("*.py") if p.stem != "__init__")


def _imports(module: str) -> tuple[set[str], set[str]]:
    """(the engine modules ``module`` imports anywhere in its source, the top-level packages
    it imports at module level)."""
    tree = ast.parse((ROOT / f"{module}.py").read_text())
    siblings: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == PACKAGE:
            siblings.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PACKAGE + "."):
            siblings.add(node.module.rsplit(".", 1)[1])  # type: ignore[union-attr]
        elif isinstance(node, ast.Import):
            siblings.update(
                a.name.rsplit(".", 1)[1] for a in node.names if a.name.startswith(PACKAGE + ".")
            )
    top = set()
    for node in tree.body:
        block = node.body if isinstance(node, ast.Try) else [node]
        for item in block:
            if isinstance(item, ast.Import):
                top.update(a.name.split(".")[0] for a in item.names)
            elif isinstance(item, ast.ImportFrom) and item.module:
                top.add(item.module.split(".")[0])
    return siblings, top


def test_the_public_api_is_exported() -> None:
    assert sorted(engine.__all__) == sorted(set(engine.__all__))
    for name in engine.__all__:
        assert getattr(engine, name) is not None, name
    for module in MODULES:
        importlib.import_module(f"{PACKAGE}.{module}")


LAYERS = [
    "runtime",
    "inputs",
    "tiles",
    "autograd",
    "triton_kernels",
    "backend",
    "config",
    "dense",
    "lse",
    "layout",
]
"""The modules in the order of the package docstring: each imports only modules before it."""


def test_each_module_imports_only_those_before_it() -> None:
    """So no module imports one that imports it back, and none imports the package itself
    (a name from ``__init__`` is not a module here)."""
    assert sorted(LAYERS) == MODULES  # a new module takes its place here and in the docstring
    for i, module in enumerate(LAYERS):
        deps = _imports(module)[0]
        assert deps <= set(LAYERS[:i]), (module, deps - set(LAYERS[:i]))
    doc = engine.__doc__ or ""
    places = [doc.index(f"engine.{module}`") for module in LAYERS]
    assert places == sorted(places), "the package docstring lists the modules in another order"


def test_only_the_kernel_module_imports_triton() -> None:
    for module in MODULES:
        if module != "triton_kernels":
            assert "triton" not in _imports(module)[1], module


def test_the_package_and_a_cpu_loss_leave_triton_unimported(run_python) -> None:
    script = (
        "import sys, torch, manyview\n"
        "import manyview.losses.engine\n"
        "loss = manyview.create('loss', 'infonce', engine='tiled')\n"
        "loss(torch.randn(8, 2, 4, requires_grad=True)).backward()\n"
        "print('triton' in sys.modules)\n"
    )
    result = run_python("-c", script, env={"TRITON_INTERPRET": "0"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
