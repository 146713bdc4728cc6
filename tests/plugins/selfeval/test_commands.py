"""``manyview generate``: a PNG grid from prompts of a trained self_e run, and one-line
errors."""

from __future__ import annotations

import pytest
from PIL import Image

from manyview.cli import main


def test_generate_writes_a_grid_row_per_prompt(tiny_self_e, tmp_path, capsys):
    out = tmp_path / "grid.png"
    args = ["generate", "--checkpoint", str(tiny_self_e), "--prompt", "seven", "--prompt", "7"]
    code = main(
        [*args, "--n", "3", "--steps", "2", "--guidance", "cfg", "--scale", "3", "--out", str(out)]
    )
    assert code == 0, capsys.readouterr().err
    assert "2 prompt(s) x 3 images, 2 steps" in capsys.readouterr().out
    with Image.open(out) as grid:
        assert grid.size == (3 * 66 + 2, 2 * 66 + 2)
    again = tmp_path / "again.png"
    assert (
        main(
            [
                *args,
                "--n",
                "3",
                "--steps",
                "2",
                "--guidance",
                "cfg",
                "--scale",
                "3",
                "--out",
                str(again),
            ]
        )
        == 0
    )
    assert out.read_bytes() == again.read_bytes()  # the same seed, the same grid


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--steps", "0"], "--steps"),
        (["--scale", "0.5"], "--scale"),
        (["--n", "0"], "--n"),
        (["--guidance", "epcfg"], "did you mean"),
        (["--prompt", "a very long prompt that is far beyond eight tokens"], "tokens"),
    ],
)
def test_bad_arguments_are_one_line_errors(tiny_self_e, tmp_path, capsys, extra, match):
    args = [
        "generate",
        "--checkpoint",
        str(tiny_self_e),
        "--prompt",
        "seven",
        "--out",
        str(tmp_path / "g.png"),
    ]
    assert main([*args, *extra]) != 0
    err = capsys.readouterr().err.strip()
    assert match in err and "\n" not in err and err.startswith("manyview generate:")
    assert not (tmp_path / "g.png").exists()


def test_a_run_that_is_not_self_e_is_refused(tmp_path, capsys):
    from manyview.testing.benchmarks import tiny_run

    run = tiny_run(tmp_path)
    assert main(["generate", "--checkpoint", str(run.path), "--prompt", "seven"]) != 0
    err = capsys.readouterr().err.strip()
    assert "not a self_e run" in err and "\n" not in err
