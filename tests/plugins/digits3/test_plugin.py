"""manyview-digits3 registers the digits3 dataset and its configurations, `demo` among
them, through its entry point, and listing them imports no torch."""

from __future__ import annotations

import manyview
from manyview.config import load_config

CONFIGS = ("digits3-mv_infonce", "digits3-mv_dhel", "digits3-pwe", "digits3-clip", "demo")


def test_plugin_loaded_with_everything_registered():
    (info,) = [p for p in manyview.plugins() if p.distribution == "manyview-digits3"]
    assert info.status == "loaded", info.error
    assert info.name == "digits3"
    assert info.registered["dataset"] == ["digits3"]
    assert set(info.registered["config"]) == set(CONFIGS)


def test_every_configuration_trains_digits3_on_three_modalities():
    for name in CONFIGS:
        path = manyview.create("config", name)
        assert path.suffix == ".toml" and path.parent.name == "configs", path
        config = load_config(path)
        assert config["data"]["name"] == "digits3"
        assert set(config["modalities"]) == {"image", "audio", "text"}
    assert manyview.create("config", "demo") == manyview.create("config", "digits3-mv_infonce")


def test_listing_imports_no_torch(fresh_cli):
    result = fresh_cli(["list", "config", "--json"], heavy=("torch", "sklearn"))
    assert result.returncode == 0, result.stderr
    assert result.heavy == []
    listed = {row["name"]: row["plugin"] for row in result.rows()}
    assert all(listed[name] == "manyview-digits3" for name in CONFIGS)
