"""Named run configurations: the core's ``quickstart``, finding a configuration by name or
path, a plugin's configuration, and the one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

import manyview
from manyview.cli import main
from manyview.config import ConfigError, load_config
from manyview.configs import packaged_file, quickstart, resolve


def test_quickstart_is_registered_by_the_core():
    entry = manyview.entry("config", "quickstart")
    assert entry.plugin == "manyview" and entry.summary
    path = manyview.create("config", "quickstart")
    assert path == quickstart() and path.name == "quickstart.toml" and path.is_file()
    assert set(load_config(path)["modalities"]) == {"a", "b"}


def test_resolve_a_file_a_path_or_a_name(tmp_path):
    own = tmp_path / "mine.toml"
    own.write_text("")
    assert resolve(own) == own and resolve(str(own)) == own
    assert resolve("quickstart") == resolve("quickstart.toml") == quickstart()
    missing = tmp_path / "nope.toml"
    assert resolve(missing) == missing  # a path: load_config reports the missing file


def test_an_unknown_name_is_one_line_with_suggestions():
    with pytest.raises(ConfigError) as caught:
        resolve("quickstrat")
    message = str(caught.value)
    assert message.startswith("quickstrat: no such configuration file, nor a registered")
    assert "did you mean 'quickstart'" in message and "\n" not in message


def test_a_plugin_ships_a_configuration(fresh_plugins, tmp_path):
    good = tmp_path / "tiny.toml"
    good.write_text(quickstart().read_text())

    class Plugin:
        @manyview.hookimpl
        def manyview_register_configs(self, register):
            register("tiny", lambda: good, summary="a copy of quickstart")
            register("broken", lambda: tmp_path / "gone.toml", summary="a missing file")

    info = manyview.manager.register_plugin(Plugin(), name="cfg", distribution="my-configs")
    assert info.status == "loaded", info.error
    assert resolve("tiny") == good
    with pytest.raises(ConfigError, match=r"config 'broken' of plugin 'my-configs' gives .*gone"):
        resolve("broken")


def test_packaged_file_of_a_broken_installation():
    with pytest.raises(FileNotFoundError, match=r"manyview\.configs has no file 'none\.toml'"):
        packaged_file("manyview.configs", "none.toml")


def test_train_by_registered_name(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "quickstart", "--set", "run.steps=2", "--set", "run.checkpoint_every=2"]
    assert main([*argv, "--out", str(out)]) == 0
    assert "done: step 2" in capsys.readouterr().out
    assert Path(out, "config.toml").is_file()
    assert main(["train", "no-such-config"]) == 2
    assert "no such configuration file, nor a registered" in capsys.readouterr().err
