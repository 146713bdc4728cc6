"""The command line: --help, --version, plugins, list; no torch import on the fast paths."""

from __future__ import annotations

import json

import pytest

import manyview
from manyview.cli import main


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert manyview.__version__ in capsys.readouterr().out


def test_no_command_prints_help(capsys):
    assert main([]) == 0
    assert "plugins" in capsys.readouterr().out


def test_list_loss_table(capsys):
    assert main(["list", "loss"]) == 0
    out = capsys.readouterr().out
    for name in manyview.available("loss"):
        assert name in out
    assert "summary" in out.splitlines()[0]


def test_every_builtin_has_a_summary():
    for kind in manyview.KINDS:
        for entry in manyview.manager.registry().entries(kind):
            assert entry.summary, f"{kind} {entry.name} has no summary"


def test_list_json(capsys):
    assert main(["list", "view", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    expected = {"name": "embedding_noise", "plugin": "manyview", "modality": "embedding"}
    assert expected.items() <= rows["embedding_noise"].items()
    for row in rows.values():
        module, _, attr = row["factory"].partition(":")
        assert module and attr, f"{row['name']}: factory {row['factory']!r} is not 'module:attr'"


def test_list_json_shows_a_callable_factorys_module_and_name(capsys, fresh_plugins):
    from manyview import manager

    def read_flac(**options):
        """Read FLAC files."""

    class Readers:
        @manyview.hookimpl
        def manyview_register_readers(self, register):
            register("flac", read_flac, modality="audio", suffixes=(".flac",))

    manager.register_plugin(Readers(), name="readers", distribution="dist-readers")
    assert main(["list", "reader", "--json"]) == 0
    [row] = [r for r in json.loads(capsys.readouterr().out) if r["name"] == "flac"]
    assert row == {
        "name": "flac",
        "plugin": "dist-readers",
        "summary": "Read FLAC files.",
        "modality": "audio",
        "factory": f"{__name__}:test_list_json_shows_a_callable_factorys_module_and_name"
        ".<locals>.read_flac",
    }
    assert main(["list", "readers"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["name", "plugin", "modality", "summary"]
    assert ["flac", "dist-readers", "audio", "Read", "FLAC", "files."] in [
        line.split() for line in table[2:]
    ]


def test_list_config(capsys, fresh_plugins, tmp_path):
    from manyview import manager

    class Configs:
        @manyview.hookimpl
        def manyview_register_configs(self, register):
            register("tiny_run", lambda: tmp_path / "tiny.toml", summary="a tiny run")

    assert main(["list", "config"]) == 0
    assert "tiny_run" not in capsys.readouterr().out
    manager.register_plugin(Configs(), name="configs")
    assert main(["list", "config"]) == 0
    assert "tiny_run" in capsys.readouterr().out


def test_list_unknown_kind_is_a_usage_error(capsys):
    assert main(["list", "lossez"]) == 2
    assert "did you mean 'loss'" in capsys.readouterr().err


def test_list_empty_kind(capsys, monkeypatch):
    import manyview.manager

    class Empty:
        def entries(self, kind):
            return []

    monkeypatch.setattr(manyview.manager, "registry", lambda: Empty())
    assert main(["list", "benchmark"]) == 0
    assert "no benchmark is registered" in capsys.readouterr().out


def test_list_benchmark_shows_crossmodal(capsys):
    assert main(["list", "benchmark"]) == 0
    assert "crossmodal" in capsys.readouterr().out


def test_plugins_shows_a_disabled_builtin(capsys, fresh_plugins, monkeypatch):
    monkeypatch.setenv("MANYVIEW_DISABLE_PLUGINS", "manyview.views")
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "manyview.views  (manyview " in out and "built-in): disabled" in out
    assert "manyview.losses  (manyview " in out
    assert main(["plugins", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["manyview.views"]["status"] == "disabled" and rows["manyview.views"]["builtin"]


def test_plugins_json(capsys):
    assert main(["plugins", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    core = [r for r in rows if r["distribution"] == "manyview"]
    assert core and all(r["status"] == "loaded" for r in core)
    assert "infonce" in next(r for r in core if "loss" in r["registered"])["registered"]["loss"]


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["list", "loss"],
        ["list", "view", "--json"],
        ["list", "config"],
        ["list", "reader", "--json"],
        ["plugins"],
        ["plugins", "--json"],
    ],
)
def test_fast_commands_do_not_import_torch(fresh_cli, argv):
    result = fresh_cli(argv, heavy=("torch", "numpy", "timm", "open_clip", "diffusers"))
    assert result.returncode == 0, result.stderr
    assert result.heavy == []


def test_console_script_help(run_python):
    result = run_python("-m", "manyview", "--help")
    assert result.returncode == 0
    for command in ("plugins", "list", "new-plugin"):
        assert command in result.stdout
