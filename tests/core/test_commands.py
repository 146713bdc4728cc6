"""Plugin commands (``manyview_register_commands``): listed by ``--help``, parsed, run; a
failing one is one line; a name a built-in or an earlier plugin has is refused, not fatal."""

from __future__ import annotations

import argparse
import json

import pytest

import manyview
from manyview import manager
from manyview.cli import BUILTIN_COMMANDS, build_parser, main


def _help(capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit:
        main(["--help"])
    assert exit.value.code == 0
    return capsys.readouterr().out


class Greeter:
    """A plugin with one command, ``greet``, that counts its ``configure`` calls."""

    def __init__(self) -> None:
        self.configured = 0

    def configure(self, parser: argparse.ArgumentParser) -> None:
        self.configured += 1
        parser.add_argument("who")
        parser.add_argument("--times", type=int, default=1)

    def run(self, args: argparse.Namespace) -> int:
        """Greet someone (from a test plugin)."""
        print(" ".join([f"hello {args.who}"] * args.times))
        return 0

    @manyview.hookimpl
    def manyview_register_commands(self, register):
        register("greet", self.run, configure=self.configure)


def test_hook_manyview_register_commands(fresh_plugins, capsys):
    plugin = Greeter()
    info = manager.register_plugin(plugin, name="greeter", distribution="dist-greet")
    assert info.status == "loaded", info.error
    assert info.registered == {"command": ["greet"]} and info.warnings == []
    [command] = [c for c in manager.commands() if c.plugin == "greeter"]
    assert (command.name, command.plugin) == ("greet", "greeter")
    assert command.distribution == "dist-greet"
    assert command.help == "Greet someone (from a test plugin)."  # the run's docstring

    out = _help(capsys)
    assert "greet" in out and "Greet someone (from a test plugin)." in out
    assert plugin.configured == 0  # --help lists the command without setting it up

    assert main(["greet", "world", "--times", "2"]) == 0
    assert capsys.readouterr().out == "hello world hello world\n"
    assert plugin.configured == 1

    assert main(["list", "loss"]) == 0 and plugin.configured == 1  # only its own parse
    capsys.readouterr()
    assert main(["plugins"]) == 0
    assert "    command: greet" in capsys.readouterr().out
    assert main(["plugins", "--json"]) == 0
    row = next(r for r in json.loads(capsys.readouterr().out) if r["name"] == "greeter")
    assert row["registered"] == {"command": ["greet"]} and row["warnings"] == []


def test_a_plugin_commands_usage_error_is_argparses(fresh_plugins, capsys):
    manager.register_plugin(Greeter(), name="greeter")
    with pytest.raises(SystemExit) as exit:
        main(["greet", "world", "--times", "many"])
    assert exit.value.code == 2
    assert "invalid int value: 'many'" in capsys.readouterr().err


class Failing:
    """Commands that raise, exit, return nonsense, or fail to set themselves up."""

    @manyview.hookimpl
    def manyview_register_commands(self, register):
        def boom(args):
            raise ValueError("the input is empty;\n  give --input FILE")

        def leaves(args):
            raise SystemExit(3)

        def says(args):
            raise SystemExit("cannot go on")

        def returns_text(args):
            return "done"

        def bad_setup(parser):
            raise RuntimeError("configure exploded")

        register("boom", boom, help="raises")
        register("leaves", leaves, help="exits 3")
        register("says", says, help="exits with a message")
        register("returns-text", returns_text, help="returns a string")
        register("bad-setup", lambda args: 0, help="cannot be set up", configure=bad_setup)


@pytest.mark.parametrize(
    ("argv", "status", "err"),
    [
        (["boom"], 1, "manyview boom: ValueError: the input is empty; give --input FILE\n"),
        (["leaves"], 3, ""),
        (["says"], 1, "manyview says: cannot go on\n"),
        (
            ["returns-text"],
            1,
            "manyview returns-text: the command of plugin 'failing' returned 'done'; a command "
            "returns an exit status (int) or None\n",
        ),
        (
            ["bad-setup"],
            1,
            "manyview bad-setup: plugin 'failing' failed to set up its command 'bad-setup': "
            "RuntimeError: configure exploded. Fix the plugin, or set "
            "MANYVIEW_DISABLE_PLUGINS=failing to run without it\n",
        ),
    ],
)
def test_a_failing_plugin_command_is_one_line(fresh_plugins, capsys, argv, status, err):
    assert manager.register_plugin(Failing(), name="failing").status == "loaded"
    assert main(argv) == status
    captured = capsys.readouterr()
    assert captured.err == err and captured.out == ""
    assert main(["list", "loss"]) == 0  # the others still work, bad-setup's included


def test_a_command_named_like_a_builtin_is_refused(fresh_plugins, capsys):
    class Squatter:
        @manyview.hookimpl
        def manyview_register_commands(self, register):
            register("train", lambda args: print("not the trainer"), help="a second train")
            register("extra", lambda args: print("extra ran"), help="a free name")

        @manyview.hookimpl
        def manyview_register_losses(self, register):
            register("squatter_loss", "some.module:Loss", summary="kept")

    info = manager.register_plugin(Squatter(), name="squatter")
    assert info.status == "loaded", info.error
    assert info.registered == {"loss": ["squatter_loss"], "command": ["extra"]}
    assert info.warnings == [
        "command 'train' refused: a built-in command has that name (`manyview train` stays "
        "the built-in); rename the plugin's command"
    ]
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "squatter  (__main__ 0, entry point): loaded" in out
    assert "    warning: command 'train' refused" in out
    assert main(["train"]) == 2  # still the built-in
    assert "give a CONFIG.toml" in capsys.readouterr().err
    assert main(["extra"]) == 0 and capsys.readouterr().out == "extra ran\n"
    assert "a second train" not in _help(capsys)


def test_a_command_an_earlier_plugin_has_is_refused(fresh_plugins, capsys):
    def plugin(text: str) -> object:
        class Plugin:
            @manyview.hookimpl
            def manyview_register_commands(self, register):
                register("hello", lambda args: print(text), help=text)

        return Plugin()

    assert manager.register_plugin(plugin("first"), name="first").registered == {
        "command": ["hello"]
    }
    second = manager.register_plugin(plugin("second"), name="second")
    assert second.status == "loaded" and second.registered == {}
    assert second.warnings == [
        "command 'hello' refused: plugin 'first' registered it first (and keeps it); rename "
        "one, or disable one with MANYVIEW_DISABLE_PLUGINS"
    ]
    assert main(["hello"]) == 0 and capsys.readouterr().out == "first\n"
    manager.unregister_plugin("first")
    assert "second" not in [c.plugin for c in manager.commands()]  # the refused one stays out


def test_a_broken_commands_hookimpl_is_reported_and_the_cli_works(fresh_plugins, capsys):
    class Broken:
        @manyview.hookimpl
        def manyview_register_commands(self, register):
            register("half", lambda args: 0, help="registered before the hook raised")
            raise RuntimeError("commands hook exploded")

        @manyview.hookimpl
        def manyview_register_losses(self, register):
            register("broken_loss", "some.module:Loss", summary="not kept")

    info = manager.register_plugin(Broken(), name="broken")
    assert info.status == "failed" and info.error == "RuntimeError: commands hook exploded"
    assert info.registered == {} and "broken" not in [c.plugin for c in manager.commands()]
    assert "broken_loss" not in manyview.available("loss")
    out = _help(capsys)
    assert "half" not in out and "train" in out
    assert main(["plugins"]) == 0
    captured = capsys.readouterr()
    assert "broken  (__main__ 0, entry point): failed" in captured.out
    assert "    error: RuntimeError: commands hook exploded" in captured.out
    assert main(["list", "loss"]) == 0 and "infonce" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "kwargs", "error"),
    [
        (("two words", print), {}, "ValueError: command name 'two words' is not valid"),
        (("-x", print), {}, "ValueError: command name '-x' is not valid"),
        (("ok", "no_colon"), {}, "run 'no_colon' must be 'package.module:attr'"),
        (("ok", 3), {}, "TypeError: command 'ok': run must be a function or 'module:attr'"),
        (("ok", print), {"configure": 3}, "configure must be a function or 'module:attr'"),
        (("ok", print), {"help": ["a"]}, "help must be a string"),
        (("ok", print), {"summary": "x"}, "unexpected keyword argument 'summary'"),
    ],
)
def test_a_malformed_command_fails_its_plugin(fresh_plugins, args, kwargs, error):
    class Bad:
        @manyview.hookimpl
        def manyview_register_commands(self, register):
            register(*args, **kwargs)

    info = manager.register_plugin(Bad(), name="bad")
    assert info.status == "failed" and error in info.error


def test_a_command_registered_twice_by_one_plugin_fails_it(fresh_plugins):
    class Twice:
        @manyview.hookimpl
        def manyview_register_commands(self, register):
            register("again", print, help="one")
            register("again", print, help="two")

    info = manager.register_plugin(Twice(), name="twice")
    assert info.status == "failed" and "registered twice by 'twice'" in info.error


def test_a_string_run_that_cannot_be_imported_is_one_line(fresh_plugins, capsys):
    class Missing:
        @manyview.hookimpl
        def manyview_register_commands(self, register):
            register("gone", "no_such_module_here:run", help="its module is missing")

    assert manager.register_plugin(Missing(), name="missing").status == "loaded"
    assert main(["gone"]) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert err.startswith("manyview gone: ImportError: command 'gone' of plugin 'missing' could")
    assert "MANYVIEW_DISABLE_PLUGINS=missing" in err


def test_builtin_commands_are_the_parsers(fresh_plugins):
    parser = build_parser()
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    plugin_commands = tuple(c.name for c in manager.commands())
    assert tuple(sub.choices) == BUILTIN_COMMANDS + plugin_commands


COMMANDS_PLUGIN = """
import manyview

@manyview.hookimpl
def manyview_register_commands(register):
    register("heavy", "ep_heavy_command:run", help="a command that needs torch",
             configure="ep_heavy_command:configure")
"""

HEAVY_COMMAND = """
import torch

def configure(parser):
    parser.add_argument("--n", type=int, default=3)

def run(args):
    print("sum", int(torch.arange(args.n).sum()))
"""


def test_plugin_commands_stay_lazy(run_python, tmp_path, fake_distribution):
    site = tmp_path / "site"
    fake_distribution(
        site,
        "manyview-heavycmd",
        {"heavycmd": "ep_heavy_plugin"},
        {"ep_heavy_plugin": COMMANDS_PLUGIN, "ep_heavy_command": HEAVY_COMMAND},
    )
    code = (
        "import sys\nfrom manyview.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('TORCH', 'torch' in sys.modules)\n"
    )
    result = run_python("-c", code, path=[site])
    assert result.returncode == 0, result.stderr
    assert "a command that needs torch" in result.stdout and "TORCH False" in result.stdout
    result = run_python("-m", "manyview", "heavy", "--n", "5", path=[site])
    assert result.returncode == 0, result.stderr
    assert result.stdout == "sum 10\n"
