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
SETS = [arg for s in SHORT for arg in ("--set", s)]


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
    assert main(["train", "ddae", "--out", str(run), *SETS]) == 0
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


def test_the_sample_command_writes_a_grid(tmp_path, capsys):
    run = tmp_path / "run"
    sets = SETS
    conditional = ["--set", "recipe_options.class_conditional=true"]
    assert main(["train", "ddae", "--out", str(run), *sets, *conditional]) == 0
    out = tmp_path / "grid.png"
    args = ["sample", "--checkpoint", str(run), "--n", "12", "--steps", "3", "--out", str(out)]
    assert main([*args, "--labels", "all", "--guidance", "2", "--nrow", "4"]) == 0
    assert "wrote" in capsys.readouterr().out
    with Image.open(out) as image:
        assert image.size[0] >= 4 * 64 and image.size[1] >= 3 * 64
    for bad, message in [
        (["--labels", "12"], "classes in [0, 10)"),
        (["--labels", "x"], "integers separated by commas"),
        (["--guidance", "2"], "--guidance needs --labels"),
        (["--steps", "0"], "--steps must be a positive integer"),
    ]:
        assert main([*args, *bad]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err


def test_the_sample_command_refuses_a_run_that_does_not_generate(tmp_path, capsys):
    from manyview.testing.recipes import example_config

    Trainer(
        example_config("contrastive", ["run.steps=1", "run.checkpoint_every=1"]),
        tmp_path,
        progress=False,
    ).fit()
    assert main(["sample", "--checkpoint", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "does not generate images" in err and "\n" not in err
