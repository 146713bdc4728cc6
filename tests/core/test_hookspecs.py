"""Meta-tests that guard the plugin contract (datasette's discipline): every hook has a
one-line docstring, is documented with its arguments and has a ``test_hook_<name>`` test."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from manyview import hookspecs
from manyview.registry import HOOK_FOR_KIND, KINDS

ROOT = Path(__file__).resolve().parents[2]
HOOKS = [
    name for name, obj in vars(hookspecs).items() if name.startswith("manyview_") and callable(obj)
]
LIFECYCLE = [
    "manyview_train_start",
    "manyview_step_end",
    "manyview_checkpoint_saved",
    "manyview_train_end",
]


def test_every_hook_has_a_one_line_docstring():
    assert len(HOOKS) == 14
    for name in HOOKS:
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert doc and len(doc.splitlines()) == 1, f"{name} needs a one-line docstring"


def test_every_kind_has_its_registration_hook():
    assert KINDS == (
        "view", "encoder", "teacher", "loss", "dataset", "benchmark", "recipe", "config", "reader"
    )  # fmt: skip
    assert [*HOOK_FOR_KIND.values(), "manyview_register_commands", *LIFECYCLE] == HOOKS
    for hook in [*HOOK_FOR_KIND.values(), "manyview_register_commands"]:
        assert list(inspect.signature(getattr(hookspecs, hook)).parameters) == ["register"]


def test_every_hook_is_documented_with_its_arguments():
    docs = (ROOT / "docs" / "plugins.md").read_text()
    for name in HOOKS:
        args = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
        assert f"`{name}({args})`" in docs, f"docs/plugins.md does not document {name}({args})"


def test_every_hook_has_a_test_named_after_it():
    tests = "\n".join(p.read_text() for p in (ROOT / "tests" / "core").rglob("test_*.py"))
    defined = set(re.findall(r"^def (test_hook_\w+)\(", tests, flags=re.MULTILINE))
    missing = [name for name in HOOKS if f"test_hook_{name}" not in defined]
    assert not missing, f"add a test named test_hook_<hook> for: {', '.join(missing)}"
