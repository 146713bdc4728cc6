"""The digits configurations train through the trainer, and a trained run goes through
``manyview bench --suite diffusion_probe,generation`` to its JSON, Markdown and PNGs."""

from __future__ import annotations

import json

import pytest
from PIL import Image

import manyview
from manyview.cli import main
from manyview.config import load_config
from manyview.training.trainer import Trainer

CONFIGS = {
    "ddae": {"ddpm"},
    "ddae_selfcond": {"ddpm"},
    "ddae_selfcond_moco": {"ddpm", "moco"},
    "repa": {"ddpm", "align"},
}
SHORT = ["run.steps=2", "run.batch_size=16", "run.log_every=1", "run.checkpoint_every=2"]


def test_the_plugin_registers_its_configs():
    assert set(CONFIGS) <= set(manyview.available("config"))


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_each_config_trains(name, tmp_path):
    config = load_config(manyview.create("config", name), SHORT)
    assert config["run"]["recipe"] == "diffusion" and config["data"]["name"] == "digits"
    Trainer(config, tmp_path, progress=False).fit()
    logged = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])
    assert {f"loss/{k}" for k in CONFIGS[name]} <= set(logged)


def test_bench_writes_the_probe_and_the_generation_outputs(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "ddae", "--out", str(run), *sum((["--set", s] for s in SHORT), [])]) == 0
    out = tmp_path / "bench"
    code = main(
        [
            "bench",
            "--checkpoint",
            str(run),
            "--suite",
            "diffusion_probe,generation",
            "--out",
            str(out),
            "--option",
            "levels=[11]",
            "--option",
            "shots=5",
            "--option",
            "num_samples=24",
            "--option",
            "steps=[1, 2]",
        ]
    )
    assert code == 0, capsys.readouterr().err
    rows = json.loads((out / "bench.json").read_text())
    assert {r["suite"] for r in rows} == {"diffusion_probe", "generation"}
    probe = {r["task"] for r in rows if r["suite"] == "diffusion_probe"}
    assert {"probe_grid", "linear_probe", "knn"} <= probe
    assert (out / "diffusion_probe" / "probe_grid.png").is_file()
    for png in ("samples_steps1.png", "samples_steps2.png", "quality_vs_steps.png"):
        with Image.open(out / "generation" / png) as image:
            assert image.size[0] >= 64
    md = (out / "bench.md").read_text()
    assert "# Benchmark `diffusion_probe`" in md and "# Benchmark `generation`" in md
