"""Plugins installed as distributions with a ``manyview`` entry point, in subprocesses."""

from __future__ import annotations

import json

import pytest

GOOD = """
import manyview

@manyview.hookimpl
def manyview_register_losses(register):
    register("ep_loss", "ep_good_losses:EpLoss", summary="a loss from an entry point")

@manyview.hookimpl
def manyview_register_encoders(register):
    register("ep_encoder", "ep_good_losses:EpLoss", summary="an encoder", modality="audio")
"""

GOOD_LOSSES = '''
from torch import nn

class EpLoss(nn.Module):
    """A loss from an entry point."""
    def __init__(self, temperature=0.5):
        super().__init__()
        self.temperature = temperature
'''

BROKEN = "raise ImportError('this plugin needs a package that is not installed')\n"

RAISES_IN_HOOK = """
import manyview

@manyview.hookimpl
def manyview_register_losses(register):
    raise RuntimeError("registration exploded")
"""

OTHER_CLIP = """
import manyview

@manyview.hookimpl
def manyview_register_losses(register):
    register("clip", "ep_good_losses:EpLoss", summary="another clip")
"""


@pytest.fixture
def site(tmp_path, fake_distribution):
    site = tmp_path / "site"
    fake_distribution(
        site,
        "manyview-good",
        {"good": "ep_good"},
        {"ep_good": GOOD, "ep_good_losses": GOOD_LOSSES},
        version="1.2.3",
    )
    fake_distribution(site, "manyview-broken", {"broken": "ep_broken"}, {"ep_broken": BROKEN})
    fake_distribution(
        site, "manyview-hookfail", {"hookfail": "ep_hookfail"}, {"ep_hookfail": RAISES_IN_HOOK}
    )
    return site


def plugins_json(run_python, site, **env):
    result = run_python("-m", "manyview", "plugins", "--json", path=[site], env=env)
    assert result.returncode == 0, result.stderr
    return {p["distribution"]: p for p in json.loads(result.stdout)}


def test_good_broken_and_failing_plugins(run_python, site):
    found = plugins_json(run_python, site)
    good = found["manyview-good"]
    assert good["status"] == "loaded" and good["version"] == "1.2.3"
    assert good["registered"] == {"encoder": ["ep_encoder"], "loss": ["ep_loss"]}
    broken = found["manyview-broken"]
    assert broken["status"] == "failed"
    assert "ImportError" in broken["error"] and "not installed" in broken["error"]
    hookfail = found["manyview-hookfail"]
    assert hookfail["status"] == "failed" and "registration exploded" in hookfail["error"]
    assert found["manyview"]["status"] == "loaded"


def test_human_plugins_output_shows_error_and_exits_zero(run_python, site):
    result = run_python("-m", "manyview", "plugins", path=[site])
    assert result.returncode == 0
    assert "manyview-broken" in result.stdout and "ImportError" in result.stdout
    assert "failed to load" in result.stderr


def test_list_still_works_with_a_broken_plugin(run_python, site):
    result = run_python("-m", "manyview", "list", "loss", path=[site])
    assert result.returncode == 0, result.stderr
    assert "ep_loss" in result.stdout and "infonce" in result.stdout
    result = run_python("-m", "manyview", "list", "encoder", "--json", path=[site])
    rows = [r for r in json.loads(result.stdout) if r["plugin"] == "manyview-good"]
    assert rows == [
        {
            "name": "ep_encoder",
            "plugin": "manyview-good",
            "summary": "an encoder",
            "modality": "audio",
            "factory": "ep_good_losses:EpLoss",
        }
    ]


def test_create_through_entry_point(run_python, site):
    code = "import manyview; print(manyview.create('loss', 'ep_loss', temperature=0.2).temperature)"
    result = run_python("-c", code, path=[site])
    assert result.stdout.strip() == "0.2", result.stderr


def test_allow_list(run_python, site):
    found = plugins_json(run_python, site, MANYVIEW_LOAD_PLUGINS="manyview-good")
    assert found["manyview-good"]["status"] == "loaded"
    assert found["manyview-broken"]["status"] == "disabled"
    assert found["manyview"]["status"] == "loaded"  # the allow-list leaves built-ins alone


def test_allow_list_empty_loads_no_entry_points(run_python, site):
    found = plugins_json(run_python, site, MANYVIEW_LOAD_PLUGINS="")
    assert found["manyview-good"]["status"] == "disabled"


def test_block_list_by_entry_point_name(run_python, site):
    found = plugins_json(run_python, site, MANYVIEW_DISABLE_PLUGINS="broken, hookfail")
    assert found["manyview-broken"]["status"] == "disabled"
    assert found["manyview-hookfail"]["status"] == "disabled"
    assert found["manyview-good"]["status"] == "loaded"


def builtins_json(run_python, site, **env):
    result = run_python("-m", "manyview", "plugins", "--json", path=[site], env=env)
    assert result.returncode == 0, result.stderr
    return {p["name"]: p for p in json.loads(result.stdout) if p["builtin"]}


def test_builtins_have_short_names(run_python, site):
    found = builtins_json(run_python, site)
    assert list(found) == [
        "manyview.losses",
        "manyview.distillation",
        "manyview.teachers",
        "manyview.views",
        "manyview.data",
    ]
    assert found["manyview.losses"]["module"] == "manyview.default_plugins.losses"


def test_block_list_disables_a_builtin(run_python, site):
    env = {"MANYVIEW_DISABLE_PLUGINS": "manyview.losses,broken"}
    found = builtins_json(run_python, site, **env)
    assert found["manyview.losses"]["status"] == "disabled"
    assert found["manyview.losses"]["registered"] == {}
    assert found["manyview.views"]["status"] == "loaded"
    listed = run_python("-m", "manyview", "list", "loss", path=[site], env=env)
    assert listed.returncode == 0, listed.stderr
    names = {line.split()[0] for line in listed.stdout.splitlines()[2:]}
    assert "infonce" not in names and "ep_loss" in names and "kd" in names
    shown = run_python("-m", "manyview", "plugins", path=[site], env=env).stdout
    assert "manyview.losses  (manyview " in shown and "built-in): disabled" in shown


def test_allow_list_and_block_list_together(run_python, site):
    env = {"MANYVIEW_LOAD_PLUGINS": "good", "MANYVIEW_DISABLE_PLUGINS": "manyview.teachers"}
    found = plugins_json(run_python, site, **env)
    assert found["manyview-good"]["status"] == "loaded"
    assert found["manyview-hookfail"]["status"] == "disabled"
    statuses = {name: p["status"] for name, p in builtins_json(run_python, site, **env).items()}
    assert statuses["manyview.teachers"] == "disabled" and statuses["manyview.losses"] == "loaded"


def test_name_collision_with_builtin_is_ambiguous_and_qualified_works(
    run_python, site, fake_distribution
):
    fake_distribution(
        site, "manyview-otherclip", {"otherclip": "ep_otherclip"}, {"ep_otherclip": OTHER_CLIP}
    )
    code = (
        "import manyview\n"
        "try:\n    manyview.create('loss', 'clip')\n"
        "except manyview.AmbiguousNameError as e:\n    print('AMBIGUOUS', e)\n"
        "print(type(manyview.create('loss', 'manyview-otherclip:clip')).__name__)\n"
        "print(type(manyview.create('loss', 'manyview:clip')).__name__)\n"
    )
    result = run_python("-c", code, path=[site])
    assert result.returncode == 0, result.stderr
    assert "AMBIGUOUS" in result.stdout and "manyview-otherclip" in result.stdout
    assert "EpLoss" in result.stdout and "CLIPLoss" in result.stdout
    listed = run_python("-m", "manyview", "list", "loss", path=[site]).stdout
    assert "manyview:clip" in listed and "manyview-otherclip:clip" in listed
