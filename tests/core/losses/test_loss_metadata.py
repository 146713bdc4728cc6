"""A loss's metadata has one home, its class: the registration tables carry only the factory
and a summary, and the README's table of views agrees with the classes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import manyview
from manyview.recipes import loss_contract

README = Path(__file__).resolve().parents[3] / "README.md"
CLASS_METADATA = {
    "takes", "views", "min_views", "max_views", "needs", "inputs", "labels", "label_kind",
    "from_context", "example_kwargs",
}  # fmt: skip
KNOWN_INPUTS = {"labels", "index", "targets", "negatives", "mask", "weights"}
LOSSES = manyview.available("loss")


@pytest.mark.parametrize("name", LOSSES)
def test_the_registration_declares_nothing_the_class_declares(name):
    entry = manyview.entry("loss", name)
    assert entry.summary, f"loss {name!r} has no summary"
    doubled = sorted(set(entry.meta) & CLASS_METADATA)
    assert not doubled, f"loss {name!r} registers {doubled}: declare them on the class only"


@pytest.mark.parametrize("name", LOSSES)
def test_the_class_declares_its_inputs(name):
    factory = manyview.entry("loss", name).load()
    takes, needs, inputs = loss_contract(factory)
    assert takes in ("views", "student"), f"{name}: takes = {takes!r}"
    assert set(inputs) <= KNOWN_INPUTS, f"{name}: unknown inputs {set(inputs) - KNOWN_INPUTS}"
    assert set(needs) <= set(inputs)
    wanted = getattr(factory, "from_context", {})
    assert isinstance(wanted, dict) and all(isinstance(v, str) for v in wanted.values())


def _readme_views() -> dict[str, str]:
    rows = {}
    for line in README.read_text().splitlines():
        match = re.match(r"^\| (`[^|]+`) \| [^|]+ \| ([^|]+) \|$", line)
        if match:
            names = re.findall(r"`([^`]+)`", match.group(1))
            views = [v.strip() for v in match.group(2).split("/")]
            rows.update(zip(names, views * (len(names) // len(views)), strict=True))
    return rows


def test_the_readme_table_of_views_agrees_with_the_classes():
    rows = _readme_views()
    assert len(rows) >= 13
    for name, views in rows.items():
        factory = manyview.entry("loss", name).load()
        lo, hi = factory.min_views, factory.max_views
        want = str(lo) if lo == hi else f"M >= {lo}" if hi is None else f"{lo}..{hi}"
        assert views == want, f"README says {name} takes {views!r}; the class says {want!r}"
