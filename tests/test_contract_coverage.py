"""Every registered thing is checked by a shipped contract test: losses, views, encoders,
teachers, recipes and benchmarks are parametrized over the registry (tests/core); a dataset
needs options (files, a cache), so each registered dataset must have a DatasetContractTests
subclass somewhere in the suite (the datasette-style meta-test)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import manyview

TESTS = Path(__file__).resolve().parent
CLASS = re.compile(
    r"^class \w+\(DatasetContractTests\):\n(?:    .*\n|\n)*?    name = \"([^\"]+)\"", re.M
)


def _covered() -> set[str]:
    names: set[str] = set()
    for path in TESTS.rglob("test_*.py"):
        names |= set(CLASS.findall(path.read_text()))
    return names


@pytest.mark.parametrize("name", manyview.available("dataset"))
def test_every_registered_dataset_has_a_contract_test(name):
    assert name in _covered(), (
        f"dataset {name!r} has no DatasetContractTests subclass under tests/: add one "
        "(set name, and kwargs or make(tmp_path))"
    )
