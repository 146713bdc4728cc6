"""The plugin as users get it: a wheel, pip-installed next to a core-only environment."""

from __future__ import annotations

import csv
import json
import os
import site
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PLUGIN = ROOT / "modalities" / "manyview-vision"


def core_only_site(target: Path) -> Path:
    """A folder that mirrors this environment's site-packages with symlinks, minus every
    distribution that registers ``manyview`` entry points (the modality plugins): what an
    environment holding only the core and its dependencies looks like."""
    target.mkdir()
    for packages in (Path(p) for p in site.getsitepackages() if Path(p).is_dir()):
        hidden: set[str] = set()
        for info in packages.glob("*.dist-info"):
            eps = info / "entry_points.txt"
            if eps.is_file() and "[manyview]" in eps.read_text():
                hidden.add(info.name)
                record = info / "RECORD"
                if record.is_file():
                    with record.open() as f:
                        hidden.update(row[0].split("/")[0] for row in csv.reader(f) if row)
        for entry in packages.iterdir():
            if entry.name not in hidden and not (target / entry.name).exists():
                (target / entry.name).symlink_to(entry)
    return target


@pytest.mark.slow
def test_wheel_installs_into_a_core_only_environment(tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    core = core_only_site(tmp_path / "core-site")
    (Path(purelib) / "_manyview_core.pth").write_text(
        f"import site; site.addsitedir({str(core)!r})\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MANYVIEW_", "PYTHON"))}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [python, *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=300,
            check=False,
        )

    before = run("-m", "manyview", "list", "encoder")
    assert before.returncode == 0, before.stderr
    assert "manyview-vision" not in before.stdout, "the environment is not core-only"
    # the core alone: its own configuration and reader, and a one-line hint for the demo
    configs = run("-m", "manyview", "list", "config")
    assert configs.returncode == 0 and "quickstart" in configs.stdout, configs.stderr
    assert "digits3" not in configs.stdout
    readers = json.loads(run("-m", "manyview", "list", "reader", "--json").stdout)
    assert [r["name"] for r in readers] == ["image"]
    demo = run("-m", "manyview", "demo")
    assert demo.returncode == 2 and "pip install manyview-digits3" in demo.stderr, demo.stderr

    wheels = tmp_path / "wheels"
    built = run(
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "-q",
        "-w",
        str(wheels),
        str(PLUGIN),
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = wheels.glob("manyview_vision-*.whl")
    installed = run("-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel))
    assert installed.returncode == 0, installed.stdout + installed.stderr

    for kind, names in (("encoder", ("timm", "small_cnn")), ("view", ("simclr", "multicrop"))):
        listed = run("-m", "manyview", "list", kind)
        assert listed.returncode == 0, listed.stderr
        for name in names:
            line = next(row for row in listed.stdout.splitlines() if row.startswith(name + " "))
            assert "manyview-vision" in line and "image" in line.split(), line
    plugins = json.loads(run("-m", "manyview", "plugins", "--json").stdout)
    (ours,) = [p for p in plugins if p["distribution"] == "manyview-vision"]
    assert ours["status"] == "loaded", ours["error"]
    assert {p["distribution"] for p in plugins if not p["builtin"]} == {"manyview-vision"}

    code = (
        "import manyview, manyview_vision, torch;"
        "print(manyview_vision.__file__);"
        "views = manyview.create('view', 'simclr')(torch.rand(2, 1, 8, 8));"
        "print(manyview.create('encoder', 'small_cnn', in_chans=1)(views[0]).shape)"
    )
    used = run("-c", code)
    assert used.returncode == 0, used.stderr
    where, shape = used.stdout.strip().splitlines()
    assert Path(where).is_relative_to(env_dir), f"imported the workspace copy: {where}"
    assert shape == "torch.Size([2, 128])"
