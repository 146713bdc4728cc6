"""Every registered benchmark follows the benchmark protocol on a tiny trained run."""

from __future__ import annotations

import pytest

import manyview
from manyview.benchmarks import BenchmarkError
from manyview.testing.benchmarks import check_benchmark, tiny_run

from ._generators import generator_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return tiny_run(tmp_path_factory.mktemp("tiny"))


@pytest.mark.parametrize("name", manyview.available("benchmark"))
def test_benchmark_contract(name, run, tmp_path):
    if manyview.entry("benchmark", name).meta.get("requires") == "image_generator":
        # the tiny run embeds but does not generate: a one-line error naming the protocol
        with pytest.raises(BenchmarkError, match="ImageGenerator") as exc:
            manyview.entry("benchmark", name).load()(run, out=tmp_path / "refused")
        assert "\n" not in str(exc.value)
        run = generator_run(tmp_path)
    result = check_benchmark(name, run, tmp_path / name)
    assert (tmp_path / name / "bench.json").is_file()
    assert {row["suite"] for row in result["rows"]} == {name}
