"""Choosing the self-conditioning source by the loss of short runs."""

from __future__ import annotations

import json

import pytest

from manyview.config import ConfigError
from manyview.testing.recipes import example_config
from manyview_diffusion.selection import candidate_blocks, select_bottleneck


def config():
    return example_config("diffusion", ["recipe_options.self_condition=false"])


def test_candidates_are_the_blocks_with_a_block_after_them():
    assert candidate_blocks(config()) == [
        "down_blocks.0",
        "down_blocks.1",
        "mid_block",
        "up_blocks.0",
    ]


def test_the_lowest_tail_loss_wins_and_each_run_is_self_conditioned_from_its_block(tmp_path):
    result = select_bottleneck(
        config(), ["down_blocks.1", "mid_block"], steps=3, seeds=(0, 1), out=tmp_path
    )
    assert set(result["losses"]) == {"down_blocks.1", "mid_block"}
    assert result["best"] == min(result["losses"], key=result["losses"].get)
    assert all(len(v) == 2 for v in result["per_seed"].values())
    saved = (tmp_path / "mid_block-seed1" / "config.toml").read_text()
    assert 'source = "mid_block"' in saved and "self_condition = true" in saved
    lines = (tmp_path / "mid_block-seed1" / "metrics.jsonl").read_text().splitlines()
    last = [json.loads(x)["loss/ddpm"] for x in lines if "loss/ddpm" in x][-1]
    assert result["per_seed"]["mid_block"][1] == pytest.approx(last)  # tail of 3 steps: the last


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"candidates": ["up_blocks.1"]}, "candidates: down_blocks.0"),
        ({"candidates": ["mid_blok"]}, "did you mean 'mid_block'"),
        ({"steps": 0}, "steps must be a positive int"),
        ({"seeds": ()}, "at least one seed"),
        ({"tail": 0}, "tail"),
    ],
)
def test_bad_arguments_are_one_line(kwargs, match):
    with pytest.raises(ConfigError, match=match) as info:
        select_bottleneck(config(), **kwargs)
    assert "\n" not in str(info.value)


def test_another_recipe_is_refused():
    with pytest.raises(ConfigError, match="'diffusion' recipe"):
        select_bottleneck(example_config("contrastive"))
