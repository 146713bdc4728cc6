"""`manyview demo`: the registered configuration `demo`, the error without it, and a short
run end to end (digits3, three modalities, benchmark files)."""

from __future__ import annotations

import json

import pytest

import manyview
from manyview.cli import main
from manyview.config import load_config
from manyview.configs import resolve
from manyview.demo import demo_config


def test_the_demo_is_the_registered_config_demo():
    assert demo_config() == resolve("demo") == resolve("digits3-mv_infonce")
    config = load_config(demo_config())
    assert set(config["modalities"]) == {"image", "audio", "text"}


def test_without_a_demo_config_the_error_names_the_package(monkeypatch, fresh_plugins, capsys):
    monkeypatch.setenv("MANYVIEW_DISABLE_PLUGINS", "manyview-digits3")
    manyview.manager.reload()
    assert main(["demo", "--steps", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "manyview demo: no installed plugin registers the 'demo' configuration; install "
        "manyview-digits3 (pip install manyview-digits3, or pip install 'manyview[demo]')"
    )


@pytest.mark.slow
def test_demo_short_run(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--steps", "40"]) == 0
    printed = capsys.readouterr().out
    assert "retrieval_class R@1" in printed and "zero_shot" in printed
    bench = json.loads((out / "bench" / "bench.json").read_text())
    rows = bench["rows"] if isinstance(bench, dict) else bench
    r1 = [r for r in rows if r["task"] == "retrieval_class" and r["metric"] == "R@1"]
    assert len(r1) == 6  # every ordered pair of the three modalities
    assert all(r["value"] > r["baseline"] for r in r1)
    assert {p.name for p in (out / "bench").glob("*.png")} >= {"retrieval_r1.png", "accuracy.png"}
