"""The digits3 configurations: registered, of equal budgets, and each trains 2 steps."""

from __future__ import annotations

import json

import pytest

import manyview
from manyview.config import load_config
from manyview.training.trainer import Trainer

CONFIGS = {"self_e": {"data", "self_eval"}, "flow_matching": {"data"}}
SHORT = [
    "run.steps=2",
    "run.batch_size=8",
    "run.log_every=1",
    "run.checkpoint_every=2",
    "schedule.warmup_steps=0",
    "data.options.max_images=60",
]


def test_the_plugin_registers_its_configs():
    assert set(CONFIGS) <= set(manyview.available("config"))


def test_the_two_configs_differ_only_in_the_objective():
    a = load_config(manyview.create("config", "self_e"))
    b = load_config(manyview.create("config", "flow_matching"))
    assert a["recipe_options"].pop("mode") == "self_e"
    assert b["recipe_options"].pop("mode") == "flow_matching"
    assert a == b
    assert a["optimizer"]["betas"] == [0.9, 0.95] and a["teacher"]["options"]["momentum"] == 0.99


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_each_config_trains(name, tmp_path):
    config = load_config(manyview.create("config", name), SHORT)
    assert config["run"]["recipe"] == "self_e" and config["data"]["name"] == "digits3"
    Trainer(config, tmp_path, progress=False).fit()
    logged = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])
    assert {f"loss/{k}" for k in CONFIGS[name]} <= set(logged)
