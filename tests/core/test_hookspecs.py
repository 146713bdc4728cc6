"""Meta-tests that guard the plugin contract (datasette's discipline)."""

from __future__ import annotations

import inspect
from pathlib import Path

from manyview import hookspecs

ROOT = Path(__file__).resolve().parents[2]
HOOKS = [
    name for name, obj in vars(hookspecs).items() if name.startswith("manyview_") and callable(obj)
]


def test_every_hook_has_a_one_line_docstring():
    assert len(HOOKS) == 13
    for name in HOOKS:
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert doc and len(doc.splitlines()) == 1, f"{name} needs a one-line docstring"


def test_every_hook_is_documented_with_its_arguments():
    docs = (ROOT / "docs" / "plugins.md").read_text()
    for name in HOOKS:
        args = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
        assert f"`{name}({args})`" in docs, f"docs/plugins.md does not document {name}({args})"


def test_every_hook_is_exercised_by_a_test():
    tests = "\n".join(
        p.read_text() for p in (ROOT / "tests").rglob("test_*.py") if p.name != Path(__file__).name
    )
    for name in HOOKS:
        assert name in tests, f"no test uses {name}"
