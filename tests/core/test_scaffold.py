"""`manyview new-plugin`: the scaffold installs with pip and its loss is listed and works."""

from __future__ import annotations

import json
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest
import torch

from manyview.cli import main
from manyview.scaffold import scaffold_plugin


def test_scaffold_writes_a_package(tmp_path, capsys):
    assert main(["new-plugin", "manyview-demo-loss", "--dir", str(tmp_path)]) == 0
    root = tmp_path / "manyview-demo-loss"
    assert "pip install -e" in capsys.readouterr().out
    pyproject = (root / "pyproject.toml").read_text()
    assert '[project.entry-points.manyview]\ndemo_loss = "manyview_demo_loss.plugin"' in pyproject
    plugin = (root / "src/manyview_demo_loss/plugin.py").read_text()
    assert (
        '"demo_loss_align_uniform"' in plugin
        and "manyview_demo_loss.losses.align_uniform:AlignUniform" in plugin
    )
    assert (root / "tests/test_plugin.py").exists() and (root / "README.md").exists()
    for path in root.rglob("*.py"):
        compile(path.read_text(), str(path), "exec")


def test_scaffold_refuses_to_overwrite(tmp_path, capsys):
    scaffold_plugin("mv-x", tmp_path)
    assert main(["new-plugin", "mv-x", "--dir", str(tmp_path)]) == 2
    assert "--force" in capsys.readouterr().err
    scaffold_plugin("mv-x", tmp_path, force=True)


@pytest.mark.parametrize("bad", ["1abc", "has space", "manyview", "class"])
def test_scaffold_rejects_bad_names(tmp_path, bad):
    with pytest.raises(ValueError):
        scaffold_plugin(bad, tmp_path)


def test_scaffolded_loss_passes_contract_in_process(tmp_path, fresh_plugins):
    """The scaffold's loss class satisfies the contract checks (without installing)."""
    import importlib

    from manyview import manager
    from manyview.testing import LOSS_CHECKS

    root = scaffold_plugin("manyview-inproc", tmp_path)
    sys.path.insert(0, str(root / "src"))
    try:
        plugin = importlib.import_module("manyview_inproc.plugin")
        info = manager.register_plugin(plugin, name="inproc", distribution="manyview-inproc")
        assert info.status == "loaded", info.error
        loss = __import__("manyview").create("loss", "inproc_align_uniform")
        for check in LOSS_CHECKS.values():
            check(loss)
    finally:
        sys.path.remove(str(root / "src"))


def test_objective_scaffold_passes_the_recipe_contract_in_process(tmp_path, fresh_plugins):
    """The objective scaffold's recipe, loss and teacher satisfy the contract checks."""
    import importlib

    from manyview import manager
    from manyview.testing import (
        LOSS_CHECKS,
        RECIPE_CHECKS,
        build,
        check_recipe_resume,
        check_teacher,
    )

    root = scaffold_plugin("manyview-objinproc", tmp_path, kind="objective")
    assert {"recipes", "teachers", "losses", "plugin.py"} <= {
        p.name for p in (root / "src/manyview_objinproc").iterdir()
    }
    sys.path.insert(0, str(root / "src"))
    try:
        plugin = importlib.import_module("manyview_objinproc.plugin")
        info = manager.register_plugin(plugin, name="objinproc", distribution="manyview-objinproc")
        assert info.status == "loaded", info.error
        assert info.registered == {
            "teacher": ["objinproc_ema"],
            "loss": ["objinproc_align_uniform"],
            "recipe": ["objinproc_mean_teacher"],
        }
        for check in LOSS_CHECKS.values():
            check(build("loss", "objinproc_align_uniform"))
        check_teacher(build("teacher", "objinproc_ema", student=torch.nn.Linear(8, 4)))
        for check in RECIPE_CHECKS.values():
            check("objinproc_mean_teacher")
        check_recipe_resume("objinproc_mean_teacher", tmp_path)
    finally:
        sys.path.remove(str(root / "src"))


def test_unknown_scaffold_kind(tmp_path, capsys):
    with pytest.raises(ValueError, match="unknown kind 'model'; choose one of loss, objective"):
        scaffold_plugin("mv-y", tmp_path, kind="model")
    with pytest.raises(SystemExit):
        main(["new-plugin", "mv-y", "--kind", "model"])


def _install_in_a_fresh_venv(root: Path, tmp_path: Path):
    """A new venv that sees this project's environment (manyview, torch, pytest) through a
    .pth file, with the scaffolded package installed editable by pip; returns a runner."""
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    new_site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    ours = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (new_site / "_manyview_dev.pth").write_text(
        "".join(f"import site; site.addsitedir({p!r})\n" for p in ours)
    )

    def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [python, *args], capture_output=True, text=True, cwd=cwd, timeout=600, check=False
        )

    install = run(
        "-m",
        "pip",
        "install",
        "--no-build-isolation",
        "--no-deps",
        "--no-index",
        "-q",
        "-e",
        str(root),
    )
    assert install.returncode == 0, install.stdout + install.stderr
    return run


@pytest.mark.slow
def test_scaffold_installs_with_pip_and_registers(tmp_path):
    """A user's path: scaffold, `pip install -e`, `manyview list loss`, create, run its tests."""
    root = scaffold_plugin("manyview-myloss", tmp_path)
    run = _install_in_a_fresh_venv(root, tmp_path)

    listed = run("-m", "manyview", "list", "loss")
    assert listed.returncode == 0, listed.stderr
    assert "myloss_align_uniform" in listed.stdout and "manyview-myloss" in listed.stdout

    plugins = json.loads(run("-m", "manyview", "plugins", "--json").stdout)
    mine = next(p for p in plugins if p["distribution"] == "manyview-myloss")
    assert mine["status"] == "loaded" and mine["registered"] == {"loss": ["myloss_align_uniform"]}

    code = (
        "import torch, manyview; l = manyview.create('loss', 'myloss_align_uniform');"
        "print(float(l(torch.randn(8, 3, 16))))"
    )
    created = run("-c", code)
    assert created.returncode == 0, created.stderr
    float(created.stdout.strip())

    tests = run("-m", "pytest", "-q", "-p", "no:cacheprovider", str(root / "tests"), cwd=root)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "9 passed" in tests.stdout


@pytest.mark.slow
def test_objective_scaffold_installs_and_passes_its_generated_tests(tmp_path):
    """`manyview new-plugin NAME --kind objective`, `pip install -e` into a fresh venv, then
    its recipe trains from a TOML file and its generated contract tests pass."""
    assert main(["new-plugin", "manyview-mt", "--kind", "objective", "--dir", str(tmp_path)]) == 0
    root = tmp_path / "manyview-mt"
    run = _install_in_a_fresh_venv(root, tmp_path)
    listed = run("-m", "manyview", "list", "recipe")
    assert listed.returncode == 0 and "mt_mean_teacher" in listed.stdout, listed.stderr
    config = tmp_path / "mt.toml"
    code = (
        "import manyview; from pathlib import Path;"
        "f = manyview.entry('recipe', 'mt_mean_teacher').load();"
        f"Path({str(config)!r}).write_text(f.example_config)"
    )
    assert run("-c", code).returncode == 0
    trained = run("-m", "manyview", "train", str(config), "--out", str(tmp_path / "run"))
    assert trained.returncode == 0 and "done: step 4" in trained.stdout, trained.stderr
    tests = run("-m", "pytest", "-q", "-p", "no:cacheprovider", str(root / "tests"), cwd=root)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert " passed" in tests.stdout and "failed" not in tests.stdout


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("manyview-vision", "'manyview-vision' is an installed distribution (manyview-vision"),
        ("Manyview_Speech", "is an installed distribution (manyview-speech"),
        ("torch", "'torch' is an installed distribution (torch"),
    ],
)
def test_the_name_of_an_installed_distribution_is_refused(tmp_path, capsys, name, expected):
    assert main(["new-plugin", name, "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("manyview new-plugin: ") and expected in err
    assert "would replace it: pick another name" in err and err.count("\n") == 1
    assert not (tmp_path / name).exists()
