"""manyview-diffusion as users get it: a wheel, pip-installed next to a core-only
environment (diffusers, a plain dependency without manyview entry points, stays visible)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PLUGIN = ROOT / "plugins" / "manyview-diffusion"


@pytest.mark.slow
def test_wheel_installs_into_a_core_only_environment(core_only_venv):
    env = core_only_venv
    run = env.run

    before = run("-m", "manyview", "list", "encoder")
    assert before.returncode == 0, before.stderr
    assert "ddae_unet" not in before.stdout, "the environment is not core-only"
    plugins = json.loads(run("-m", "manyview", "plugins", "--json").stdout)
    assert not [p for p in plugins if not p["builtin"]], "the environment is not core-only"
    found = run("-c", "import diffusers, manyview_diffusion")
    assert found.returncode != 0 and "No module named 'manyview_diffusion'" in found.stderr

    env.install(PLUGIN, "manyview_diffusion-*.whl")

    listed = run("-m", "manyview", "list", "encoder")
    assert listed.returncode == 0, listed.stderr
    for name in ("ddae_unet", "ddae_dit"):
        line = next(row for row in listed.stdout.splitlines() if row.startswith(name + " "))
        assert "manyview-diffusion" in line and "image" in line.split(), line
    plugins = json.loads(run("-m", "manyview", "plugins", "--json").stdout)
    (ours,) = [p for p in plugins if p["distribution"] == "manyview-diffusion"]
    assert ours["status"] == "loaded" and not ours["error"], ours["error"]
    assert {p["distribution"] for p in plugins if not p["builtin"]} == {"manyview-diffusion"}
    shown = run("-m", "manyview", "plugins")
    assert shown.returncode == 0 and "manyview-diffusion" in shown.stdout, shown.stderr

    code = (
        "import manyview, manyview_diffusion, torch;"
        "print(manyview_diffusion.__file__);"
        "encoder = manyview.create('encoder', 'ddae_dit');"
        "print(encoder(torch.rand(2, 3, 8, 8)).shape);"
        "aug = manyview_diffusion.EDMAugment();"
        "print(aug(torch.rand(2, 3, 8, 8), generator=torch.Generator().manual_seed(0))[1].shape)"
    )
    used = run("-c", code)
    assert used.returncode == 0, used.stderr
    where, features, labels = used.stdout.strip().splitlines()
    assert Path(where).is_relative_to(env.env_dir), f"imported the workspace copy: {where}"
    assert features == "torch.Size([2, 32])" and labels == "torch.Size([2, 9])"
