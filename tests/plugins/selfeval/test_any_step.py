"""The ``any_step`` benchmark on tiny trained runs: its rows, the side-by-side comparison,
its PNGs, ``manyview bench --option compare=...`` and one-line errors."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from manyview.benchmarks import BenchmarkError
from manyview.cli import main
from manyview.runs import load_run
from manyview_selfeval.benchmarks import any_step

FAST = {"steps": [1, 2], "num_samples": 20}


def test_rows_for_each_step_count_and_the_real_data(tiny_self_e, tmp_path):
    result = any_step.run(load_run(tiny_self_e), out=tmp_path, **FAST)
    rows = result["rows"]
    keys = {"suite", "task", "query", "target", "metric", "value", "baseline", "model", "steps"}
    assert all(keys <= set(r) for r in rows)
    model = [r for r in rows if r["model"] is not None]
    assert {(r["task"], r["steps"]) for r in model} == {
        (t, k) for t in ("classifier_accuracy", "frechet_distance") for k in (1, 2)
    }
    assert {r["model"] for r in model} == {"self_e"}
    assert all(0 <= r["value"] <= 1 for r in model if r["task"] == "classifier_accuracy")
    real = {r["metric"] for r in rows if r["model"] is None}
    assert real == {"real test images", "real train vs test"}
    names = {p.name for p in tmp_path.iterdir()}
    assert {"bench.json", "bench.md", "quality_vs_steps.png"} <= names
    assert {"samples_self_e_steps1.png", "samples_self_e_steps2.png"} <= names
    with Image.open(tmp_path / "samples_self_e_steps1.png") as grid:
        # 10 rows (one a digit) of 8 cells of 64 pixels and 2-pixel gaps
        assert grid.size == (8 * 66 + 2, 10 * 66 + 2)
    assert json.loads((tmp_path / "bench.json").read_text()) == rows


def test_the_same_seed_gives_the_same_rows(tiny_self_e):
    run = load_run(tiny_self_e)
    a = any_step.run(run, steps=[1], num_samples=10)["rows"]
    b = any_step.run(run, steps=[1], num_samples=10)["rows"]
    assert a == b


def test_compare_through_bench_reports_both_runs_side_by_side(
    tiny_self_e, tiny_flow_matching, tmp_path, capsys
):
    out = tmp_path / "bench"
    code = main(
        [
            "bench",
            "--suite",
            "any_step",
            "--checkpoint",
            str(tiny_self_e),
            "--out",
            str(out),
            "--option",
            f"compare={json.dumps(str(tiny_flow_matching))}",
            "--option",
            "steps=[1, 4]",
            "--option",
            "num_samples=10",
        ]
    )
    assert code == 0, capsys.readouterr().err
    rows = json.loads((out / "bench.json").read_text())
    by_model = {r["model"] for r in rows}
    assert by_model == {"self_e", "flow_matching", None}
    for model in ("self_e", "flow_matching"):
        assert {r["steps"] for r in rows if r["model"] == model} == {1, 4}
        assert (out / f"samples_{model}_steps4.png").is_file()
    md = (out / "bench.md").read_text()
    assert "| steps | self_e | flow_matching |" in md


def test_runs_that_do_not_generate_from_prompts_are_refused(tmp_path):
    from manyview.testing.benchmarks import tiny_run

    with pytest.raises(BenchmarkError, match="PromptGenerator") as exc:
        any_step.run(tiny_run(tmp_path))
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"steps": [0]}, "steps"),
        ({"scale": 0.5}, "scale"),
        ({"compare": "/no/such/run"}, "compare"),
    ],
)
def test_bad_options_are_one_line_errors(tiny_self_e, options, match):
    with pytest.raises(BenchmarkError, match=match) as exc:
        any_step.run(load_run(tiny_self_e), **options)
    assert "\n" not in str(exc.value)
