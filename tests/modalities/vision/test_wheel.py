"""The plugin as users get it: a wheel, pip-installed next to a core-only environment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PLUGIN = ROOT / "modalities" / "manyview-vision"


@pytest.mark.slow
def test_wheel_installs_into_a_core_only_environment(core_only_venv):
    env = core_only_venv
    run = env.run

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

    env.install(PLUGIN, "manyview_vision-*.whl")

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
    assert Path(where).is_relative_to(env.env_dir), f"imported the workspace copy: {where}"
    assert shape == "torch.Size([2, 128])"
