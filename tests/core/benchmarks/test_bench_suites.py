"""``manyview bench`` with several suites: plugin benchmarks run beside ``crossmodal``, their
rows are merged, and a broken one is reported without losing the others."""

from __future__ import annotations

import json

import pytest

import manyview
from manyview import manager as plugins
from manyview.benchmarks import BenchmarkError
from manyview.benchmarks.suites import resolve, run_suites
from manyview.cli import main

SEEN: dict[str, dict] = {}


def toy_bench(checkpoint, *, out=None, split="test", batch_size=256, knob=0):
    """A plugin benchmark: one row, and it records the options it received."""
    SEEN["toy"] = {"split": split, "batch_size": batch_size, "knob": knob}
    rows = [
        {
            "suite": "toy",
            "task": "steps",
            "query": "a",
            "target": None,
            "metric": "count",
            "value": 1.0,
            "baseline": 0.0,
        }
    ]
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "toy.txt").write_text("ok")
    return {"rows": rows, "meta": {"suite": "toy"}, "files": [] if out is None else [str(out)]}


def broken_bench(checkpoint, *, out=None):
    raise RuntimeError("kaboom in a plugin benchmark")


def bad_rows_bench(checkpoint, *, out=None):
    return {"rows": [{"suite": "bad_rows", "task": "x", "value": 1.0}], "meta": {}}


class _BenchPlugin:
    @manyview.hookimpl
    def manyview_register_benchmarks(self, register):
        register("toy", toy_bench, summary="one row")
        register("broken", broken_bench, summary="always raises")
        register("bad_rows", bad_rows_bench, summary="rows without the required keys")


@pytest.fixture
def bench_plugin(fresh_plugins):
    info = plugins.register_plugin(_BenchPlugin(), name="benchplugin")
    assert info.status == "loaded"
    SEEN.clear()
    yield
    plugins.unregister_plugin("benchplugin")


def test_resolve_names_lists_all_and_suggests(bench_plugin):
    assert resolve("crossmodal, toy,crossmodal") == ["crossmodal", "toy"]
    assert set(resolve("all")) >= {"crossmodal", "toy", "broken", "bad_rows"}
    with pytest.raises(LookupError, match="toy"):
        resolve("crossmodal,toi")
    with pytest.raises(BenchmarkError, match="no benchmark suite"):
        resolve(" , ")


def test_cli_runs_plugin_suite_beside_crossmodal_and_merges(bench_plugin, run_dir, tmp_path):
    out = tmp_path / "bench"
    code = main(
        ["bench", "--checkpoint", str(run_dir), "--suite", "crossmodal,toy", "--out", str(out)]
    )
    assert code == 0
    rows = json.loads((out / "bench.json").read_text())
    suites = {r["suite"] for r in rows}
    assert suites == {"crossmodal", "toy"}
    assert (out / "crossmodal" / "bench.json").is_file()
    assert (out / "crossmodal" / "similarity.png").is_file()
    assert (out / "toy" / "toy.txt").read_text() == "ok"
    md = (out / "bench.md").read_text()
    assert "# Benchmark `crossmodal`" in md and "# Benchmark `toy`" in md
    # options the toy suite does not take (templates, device) were not passed; split was
    assert SEEN["toy"] == {"split": "test", "batch_size": 256, "knob": 0}


def test_one_broken_plugin_suite_is_reported_not_fatal(bench_plugin, run_dir, tmp_path, capsys):
    out = tmp_path / "bench"
    argv = ["bench", "--checkpoint", str(run_dir), "--out", str(out)]
    assert main([*argv, "--suite", "toy,broken,bad_rows"]) == 1
    err = capsys.readouterr().err
    assert "suite 'broken' failed: RuntimeError: kaboom in a plugin benchmark" in err
    assert "suite 'bad_rows' failed" in err and "lacks query, target, metric, baseline" in err
    rows = json.loads((out / "bench.json").read_text())
    assert {r["suite"] for r in rows} == {"toy"}  # the good suite's rows are kept
    md = (out / "bench.md").read_text()
    assert "Failed suites" in md and "kaboom" in md


def test_a_single_suite_writes_to_out_and_raises_its_own_errors(bench_plugin, run_dir, tmp_path):
    result = run_suites("toy", run_dir, out=tmp_path / "b")
    assert (tmp_path / "b" / "toy.txt").is_file() and result["failed"] == []
    with pytest.raises(BenchmarkError, match="lacks"):
        run_suites("bad_rows", run_dir)
    result = run_suites("broken", run_dir)  # a plugin crash is still contained
    assert result["rows"] == [] and "kaboom" in result["failed"][0][1]


def test_unknown_suite_in_a_list_is_a_clear_error(bench_plugin, run_dir, capsys):
    assert main(["bench", "--checkpoint", str(run_dir), "--suite", "crossmodal,tyo"]) == 2
    err = capsys.readouterr().err
    assert "tyo" in err and "toy" in err


def test_a_suites_own_option_reaches_it_and_a_typo_is_refused(
    bench_plugin, run_dir, tmp_path, capsys
):
    args = ["bench", "--checkpoint", str(run_dir), "--suite", "toy", "--out", str(tmp_path / "b")]
    assert main([*args, "--option", "knob=3"]) == 0
    assert SEEN["toy"]["knob"] == 3
    SEEN.clear()
    assert main([*args, "--option", "knb=3"]) == 2
    err = capsys.readouterr().err
    assert "takes the option 'knb'; did you mean 'knob'" in err and "\n" not in err.strip()
    assert "toy" not in SEEN  # refused before any suite ran
    assert main([*args, "--option", "split=train"]) == 2
    assert "their own flags" in capsys.readouterr().err
    assert main([*args, "--option", "knob"]) == 2
    assert "--option 'knob': expected KEY=VALUE" in capsys.readouterr().err
