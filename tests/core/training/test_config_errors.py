"""Bad configurations: each gives a one-line error that names the key, where it is, and the
fix; nothing trains and no traceback is shown."""

from __future__ import annotations

import pytest

from manyview.cli import main
from manyview.config import ConfigError, apply_overrides, load_config, parse_override

BAD = [
    # (edit applied to the tiny config, expected fragment of the one-line error)
    (("append", "\n[optimiser]\nlr = 1\n"), "unknown table 'optimiser'; did you mean 'optimizer'?"),
    (
        ("replace", "lr = 0.005", "learning_rate = 0.005"),
        "[optimizer] unknown key 'learning_rate'; did you mean 'lr'?",
    ),
    (
        ("replace", "steps = 12", 'steps = "12"'),
        "[run] steps must be an integer, got '12' (a string)",
    ),
    (("replace", "batch_size = 16", "batch_size = 1"), "[run] batch_size must be >= 2, got 1"),
    (
        ("replace", 'recipe = "contrastive"', 'recipe = "contrastive"\nprecision = "fp16"'),
        "precision = 'fp16' is not one of 'fp32', 'bf16'",
    ),
    (
        ("replace", 'name = "mv_infonce"', 'name = "mv_infonse"'),
        "unknown loss 'mv_infonse'; did you mean 'mv_infonce'",
    ),
    (
        ("replace", "options = { temperature = 0.2 }", "options = { temprature = 0.2 }"),
        "[[losses]] #1 (mv_infonce): loss 'mv_infonce' got an unexpected argument 'temprature'; did you mean 'temperature'?",
    ),
    (
        ("replace", 'encoder = "mlp"', 'encoder = "mpl"', 1),
        "[modalities.a] encoder 'mpl': unknown encoder 'mpl'; did you mean 'mlp'?",
    ),
    (
        ("replace", "[modalities.b]", "[modalities.c]"),
        "[modalities.c]: the dataset's samples have no 'c' (they have ['a', 'b'])",
    ),
    (
        ("replace", 'name = "synthetic"', 'name = "synthetik"'),
        "[data] (synthetik): unknown dataset 'synthetik'; did you mean 'synthetic'?",
    ),
    (
        (
            "replace",
            '{ name = "gaussian_noise", options = { std = 0.3 } }',
            '{ name = "gaussian_noise", options = { std = -1.0 } }',
        ),
        "views[0] (gaussian_noise): gaussian_noise: std must be >= 0",
    ),
    (
        ("replace", 'name = "mv_infonce"', 'name = "clip"'),
        "[[losses]] #1 (clip) takes 2..2 views, but the recipe gives M = 3; change num_views or use 'pwe'",
    ),
    (("replace", "[data]", "[data]\nsplit = 3"), "[data] unknown key 'split'"),
    (("append", "\n[[losses]]\nweight = 2.0\n"), "[[losses]] #3 needs name = ..."),
    (("replace", "steps = 12", "steps = 12\n[[bad"), "not valid TOML"),
    (
        ("replace", 'recipe = "contrastive"', 'recipe = "distill"'),
        "distill recipe: the student sees one modality; got ['a', 'b']",
    ),
]


def _edit(text: str, edit: tuple) -> str:
    if edit[0] == "append":
        return text + edit[1]
    count = edit[3] if len(edit) > 3 else -1
    assert edit[1] in text, edit
    return text.replace(edit[1], edit[2], count)


@pytest.mark.parametrize(("edit", "expected"), BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_config_gives_one_line_error(tiny_config, tmp_path, capsys, edit, expected):
    path = tiny_config()
    path.write_text(_edit(path.read_text(), edit))
    assert main(["train", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err, err
    assert "Traceback" not in err
    assert expected in err, err
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_overrides(tiny_config):
    config = load_config(
        tiny_config(),
        [
            "optimizer.lr=0.1",
            "run.precision=bf16",
            "losses.1.weight=3",
            "data.options.num_classes=3",
        ],
    )
    assert config["optimizer"]["lr"] == 0.1
    assert config["run"]["precision"] == "bf16"  # a bare word is read as a string
    assert config["losses"][1]["weight"] == 3.0
    assert config["data"]["options"]["num_classes"] == 3


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("optimizer.lr", "expected KEY=VALUE"),
        ("losses.7.weight=1", "losses.7 is not an index of a list of 2"),
        ("run.steps.x=1", "run.steps is not a table"),
        ("run.step=5", "[run] unknown key 'step'; did you mean 'steps'?"),
    ],
)
def test_bad_overrides(tiny_config, override, expected):
    with pytest.raises(ConfigError) as info:
        load_config(tiny_config(), [override])
    assert expected in str(info.value)


def test_parse_override_values():
    assert parse_override("a.b=[1, 2]") == (["a", "b"], [1, 2])
    assert parse_override("a=true") == (["a"], True)
    assert parse_override("a=hello world") == (["a"], "hello world")
    assert apply_overrides({}, ["x.y.z=1"]) == {"x": {"y": {"z": 1}}}


def test_missing_file(tmp_path, capsys):
    assert main(["train", str(tmp_path / "nope.toml")]) == 2
    assert "no such configuration file" in capsys.readouterr().err
