"""Every registered benchmark follows the benchmark protocol on a tiny trained run."""

from __future__ import annotations

import pkgutil

import pytest

import manyview
from manyview.benchmarks import BenchmarkError
from manyview.benchmarks.suites import unmet_requirement
from manyview.testing.benchmarks import check_benchmark, tiny_run

from ._generators import generator_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return tiny_run(tmp_path_factory.mktemp("tiny"))


@pytest.mark.parametrize("name", manyview.available("benchmark"))
def test_benchmark_contract(name, run, tmp_path):
    entry = manyview.entry("benchmark", name)
    required = entry.meta.get("requires")
    if required:
        # the tiny run embeds, nothing more: a one-line error naming the protocol
        assert unmet_requirement(name, run) is not None
        protocol = "ImageGenerator" if required == "image_generator" else required.split(":")[-1]
        with pytest.raises(BenchmarkError, match=protocol) as exc:
            entry.load()(run, out=tmp_path / "refused")
        assert "\n" not in str(exc.value)
        if entry.meta.get("example_run"):
            run = pkgutil.resolve_name(entry.meta["example_run"])(tmp_path / "example")
        else:
            assert required == "image_generator", (
                f"benchmark {name!r} requires {required!r}: register example_run="
                "'module:function' (tmp_path -> Run) so its contract can be checked"
            )
            run = generator_run(tmp_path)
        assert unmet_requirement(name, run) is None
    result = check_benchmark(name, run, tmp_path / name)
    assert (tmp_path / name / "bench.json").is_file()
    assert {row["suite"] for row in result["rows"]} == {name}
