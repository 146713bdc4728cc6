"""`manyview demo` end to end (short): digits3, three modalities, benchmark files."""

from __future__ import annotations

import json

import pytest

from manyview.cli import main
from manyview.config import load_config
from manyview.demo import packaged_config


def test_packaged_configs_are_found_by_name():
    for name in (
        "quickstart",
        "digits3-mv_infonce",
        "digits3-mv_dhel",
        "digits3-pwe",
        "digits3-clip",
    ):
        path = packaged_config(name)
        assert path is not None, name
        config = load_config(path)
        if name.startswith("digits3"):
            assert set(config["modalities"]) == {"image", "audio", "text"}


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
