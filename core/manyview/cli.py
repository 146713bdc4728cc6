"""The ``manyview`` command line.

``--help``, ``plugins`` and ``list`` import no torch: they read only the registry, whose
built-in factories are ``"module:attr"`` strings. Plugins add commands through the hook
``manyview_register_commands`` (:class:`manyview.manager.Command`): ``--help`` lists them
from their ``help`` line alone; a command's ``configure`` is called only when that command is
parsed and its ``run`` only when it runs, and a failure in either is one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from manyview import __version__
from manyview.registry import KINDS

BUILTIN_COMMANDS = ("plugins", "list", "demo", "train", "bench", "data", "new-plugin")
"""The core's own commands; a plugin command of one of these names is refused."""


class PluginCommandError(Exception):
    """A plugin's command could not be set up; the message is one line naming the plugin."""


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += [
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]
    return "\n".join(lines)


def _cmd_plugins(args: argparse.Namespace) -> int:
    from manyview.manager import plugins

    infos = plugins()
    if args.json:
        print(json.dumps([i.describe() for i in infos], indent=2))
        return 0
    for info in infos:
        origin = "built-in" if info.builtin else "entry point"
        print(f"{info.name}  ({info.distribution} {info.version}, {origin}): {info.status}")
        if info.error:
            print(f"    error: {info.error}")
        for warning in info.warnings:
            print(f"    warning: {warning}")
        for kind, names in info.registered.items():
            if names:
                print(f"    {kind}: {', '.join(names)}")
    failed = sum(i.status == "failed" for i in infos)
    if failed:
        print(f"\n{failed} plugin(s) failed to load; everything else works.", file=sys.stderr)
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from manyview.manager import registry
    from manyview.registry import normalize_kind

    try:
        kind = normalize_kind(args.kind)
    except ValueError as exc:
        print(f"manyview list: {exc}", file=sys.stderr)
        return 2
    entries = registry().entries(kind)
    ambiguous = {e.name for e in entries if sum(x.name == e.name for x in entries) > 1}
    if args.json:
        print(json.dumps([e.describe() for e in entries], indent=2))
        return 0
    if not entries:
        print(f"no {kind} is registered; `manyview plugins` shows what is installed")
        return 0
    with_modality = any(e.modality for e in entries)
    header = ["name", "plugin", *(["modality"] if with_modality else []), "summary"]
    rows = []
    for e in entries:
        name = e.qualified_name if e.name in ambiguous else e.name
        rows.append([name, e.plugin, *([e.modality or "-"] if with_modality else []), e.summary])
    print(_table(rows, header))
    return 0


def _cmd_new_plugin(args: argparse.Namespace) -> int:
    from manyview.scaffold import scaffold_plugin

    try:
        path = scaffold_plugin(args.name, args.dir, force=args.force, kind=args.kind)
    except (ValueError, FileExistsError) as exc:
        print(f"manyview new-plugin: {exc}", file=sys.stderr)
        return 2
    print(f"created {path}")
    print(f"install it with:  pip install -e {path}   (or: uv pip install -e {path})")
    kind = "recipe" if args.kind == "objective" else "loss"
    print(f"then check it with:  manyview list {kind}   and run its tests: pytest {path}/tests")
    return 0


def _leave_process_group() -> None:
    """Leave the torch.distributed group that training joined under torchrun, so that no rank
    aborts at exit ("terminate called without an active exception") with its gloo or NCCL
    threads still running. Nothing happens when torch was never imported here."""
    module = sys.modules.get("manyview.distributed")
    if module is not None:
        module.shutdown()


def _cmd_train(args: argparse.Namespace) -> int:
    """``manyview train``: every failure is one line on stderr (exit 2 for a bad
    configuration or command line, 1 for a run that stopped, 130 for Ctrl-C)."""
    from manyview.config import ConfigError
    from manyview.training.errors import CheckpointError, Stopped, TrainingError, one_line

    try:
        return _train(args)
    except ConfigError as exc:
        print(f"manyview train: {one_line(exc)}", file=sys.stderr)
        return 2
    except (TrainingError, CheckpointError) as exc:
        print(f"manyview train: {one_line(exc)}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"manyview train: {one_line(exc)}", file=sys.stderr)
        return 1
    except Stopped:  # the trainer saved a checkpoint and said so
        return 130
    except KeyboardInterrupt:
        print("manyview train: interrupted (Ctrl-C) before training started", file=sys.stderr)
        return 130
    finally:
        _leave_process_group()


def _train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from manyview.config import load_config

    if args.config is None and args.resume is None:
        print("manyview train: give a CONFIG.toml, or --resume DIR", file=sys.stderr)
        return 2
    out = args.resume or args.out
    config_path = args.config
    if args.resume is not None:
        if args.out is not None and args.out != args.resume:
            print(
                "manyview train: --resume DIR is also the output directory; drop --out",
                file=sys.stderr,
            )
            return 2
        saved = Path(args.resume) / "config.toml"
        if config_path is None:
            if not saved.is_file():
                print(
                    f"manyview train: {args.resume} has no config.toml to resume", file=sys.stderr
                )
                return 2
            config_path = str(saved)
    if out is None:  # a fresh directory per run: nothing is ever overwritten
        import time

        out = str(Path("runs") / f"{Path(config_path).stem}-{time.strftime('%Y%m%d-%H%M%S')}")
    from manyview.configs import resolve

    config = load_config(resolve(config_path), args.set)
    from manyview.training.trainer import Trainer

    metrics = Trainer(config, out, resume=args.resume is not None).fit()
    import os

    if metrics and os.environ.get("RANK", "0") == "0":  # once, under torchrun
        print(f"done: step {metrics['step']}, loss {metrics['loss']:.4f}; outputs in {out}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from pathlib import Path

    from manyview.benchmarks import BenchmarkError

    if args.batch_size < 1:
        print(
            f"manyview bench: --batch-size must be a positive integer, got {args.batch_size}",
            file=sys.stderr,
        )
        return 2
    out = Path(args.out) if args.out else Path(args.checkpoint) / "bench"
    options: dict = {"split": args.split, "batch_size": args.batch_size, "device": args.device}
    if args.modalities:
        options["modalities"] = [m.strip() for m in args.modalities.split(",") if m.strip()]
    if args.class_names:
        options["class_names"] = [c.strip() for c in args.class_names.split(",")]
    if args.templates:
        options["templates"] = args.templates
    if args.no_baseline:
        options["baseline"] = None
    from manyview.benchmarks.suites import run_suites
    from manyview.config import ConfigError, parse_override

    extra: dict = {}
    for text in args.option:
        try:
            path, value = parse_override(text)
        except ConfigError as exc:
            print(f"manyview bench: {str(exc).replace('--set', '--option')}", file=sys.stderr)
            return 2
        if len(path) != 1 or path[0] in options:
            print(
                f"manyview bench: --option {text!r}: give KEY=VALUE with a suite option's name "
                "(the common options have their own flags)",
                file=sys.stderr,
            )
            return 2
        extra[path[0]] = value
    try:
        result = run_suites(
            args.suite, args.checkpoint, out=out, require=tuple(extra), **options, **extra
        )
    except (BenchmarkError, LookupError) as exc:
        print(f"manyview bench: {exc}", file=sys.stderr)
        return 2
    print((out / "bench.md").read_text() if (out / "bench.md").is_file() else "")
    print("wrote: " + ", ".join(result.get("files", [])))
    for name, why in result.get("skipped", []):
        print(f"manyview bench: suite {name!r} skipped: {why}", file=sys.stderr)
    for name, why in result["failed"]:
        print(f"manyview bench: suite {name!r} failed: {why}", file=sys.stderr)
    return 1 if result["failed"] else 0


def _cmd_data_build(args: argparse.Namespace) -> int:
    import time

    import manyview

    start = time.perf_counter()
    try:
        factory = manyview.entry("dataset", args.name).load()
    except (LookupError, ValueError, ImportError) as exc:
        print(f"manyview data build: {exc}", file=sys.stderr)
        return 2
    build = getattr(factory, "build", None)
    if build is None:
        print(
            f"manyview data build: dataset {args.name!r} has no build step "
            "(it is made or read when it is created)",
            file=sys.stderr,
        )
        return 2
    try:
        result = build(root=args.root, force=args.force)
    except (ImportError, ValueError, OSError) as exc:
        print(f"manyview data build: {exc}", file=sys.stderr)
        return 1
    verb = "built" if result["built"] else "cached (valid, reused)"
    why = f" [rebuilt: {result['reason']}]" if result.get("reason") else ""
    seconds = time.perf_counter() - start
    print(f"{args.name}: {verb} {result['path']} in {seconds:.1f} s{why}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from manyview.config import ConfigError

    try:
        from manyview.demo import run_demo

        run_demo(args.out, steps=args.steps, overrides=args.set)
    except (ConfigError, LookupError, ImportError, FileNotFoundError) as exc:
        print(f"manyview demo: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


def _add_plugin_commands(sub: Any, configure: str | None) -> None:
    """A subparser per plugin command; only the one named ``configure`` gets its arguments."""
    from manyview.manager import _why, commands

    for command in commands():
        p = sub.add_parser(command.name, help=command.help, description=command.help or None)
        p.set_defaults(func=lambda args, command=command: _run_plugin_command(command, args))
        if command.name != configure:
            continue
        try:
            setup = command.load_configure()
            if setup is not None:
                setup(p)
        except (Exception, SystemExit) as exc:  # a broken plugin is reported, never a traceback
            raise PluginCommandError(
                f"plugin {command.plugin!r} failed to set up its command {command.name!r}: "
                f"{_why(exc)}. Fix the plugin, or set "
                f"MANYVIEW_DISABLE_PLUGINS={command.plugin} to run without it"
            ) from exc


def _run_plugin_command(command: Any, args: argparse.Namespace) -> int:
    """Run a plugin's command: whatever it raises is one line on stderr and exit status 1
    (``sys.exit(n)`` in it exits with ``n``; Ctrl-C is 130, as for every command)."""
    from manyview.manager import _why

    try:
        status = command.load_run()(args)
    except KeyboardInterrupt:
        raise
    except SystemExit as exc:  # the command chose its exit status
        if exc.code is None or isinstance(exc.code, int):
            return int(exc.code or 0)
        print(f"manyview {command.name}: {exc.code}", file=sys.stderr)
        return 1
    except Exception as exc:
        print(f"manyview {command.name}: {_why(exc)}", file=sys.stderr)
        return 1
    if status is None or (isinstance(status, int) and not isinstance(status, bool)):
        return int(status or 0)
    print(
        f"manyview {command.name}: the command of plugin {command.plugin!r} returned "
        f"{status!r}; a command returns an exit status (int) or None",
        file=sys.stderr,
    )
    return 1


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``manyview`` parser: the built-in commands, then every plugin command, of which
    only ``command`` (the one about to run) gets its arguments from its ``configure``."""
    parser = argparse.ArgumentParser(
        prog="manyview",
        description="Contrast and distil across any number of views and modalities.",
    )
    parser.add_argument("--version", action="version", version=f"manyview {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("plugins", help="installed plugins, what each registered, load errors")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_plugins)

    p = sub.add_parser("list", help="registered names of one kind, with a summary each")
    p.add_argument("kind", help="one of: " + ", ".join(KINDS))
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser(
        "demo",
        help="train the registered `demo` configuration and benchmark it (manyview-digits3: "
        "digits as images, speech and text)",
    )
    p.add_argument("--out", help="run directory (default: runs/demo-<date>-<time>)")
    p.add_argument("--steps", type=int, help="training steps (default: the demo config's)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a key of the demo configuration (repeatable)",
    )
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("train", help="train a recipe from a TOML configuration")
    p.add_argument(
        "config",
        nargs="?",
        help="the configuration: a TOML file, or a registered name (`manyview list config`)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a key, e.g. --set optimizer.lr=0.01 (repeatable)",
    )
    p.add_argument("--out", help="run directory (default: runs/<config name>-<date>-<time>)")
    p.add_argument(
        "--resume", metavar="DIR", help="continue the run in DIR from its last checkpoint"
    )
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("bench", help="benchmark a trained run against its random-init model")
    p.add_argument("--checkpoint", required=True, metavar="RUN_DIR", help="the run directory")
    p.add_argument(
        "--suite",
        default="crossmodal",
        help="registered benchmark(s), comma-separated, or 'all' (default: crossmodal); "
        "several write one merged bench.json/bench.md and a folder per suite",
    )
    p.add_argument("--out", help="output folder (default: RUN_DIR/bench)")
    p.add_argument("--split", default="test", help="the split to score on (default: test)")
    p.add_argument("--modalities", help="comma-separated (default: every encoder's)")
    p.add_argument("--class-names", help="comma-separated, in label order (for zero-shot)")
    p.add_argument("--templates", help="zero-shot prompt template set or a str with {}")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-baseline", action="store_true", help="skip the random-init model")
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a suite's own option, read as TOML (e.g. --option shots=10); given to every "
        "suite that takes it (repeatable)",
    )
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser("data", help="build and cache datasets made offline (e.g. digits3)")
    data_sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    q = data_sub.add_parser("build", help="build a dataset's cache (reused when valid)")
    q.add_argument("name", help="the dataset, e.g. digits3")
    q.add_argument("--root", help="cache root (default: $MANYVIEW_DATA, else ~/.cache/manyview)")
    q.add_argument("--force", action="store_true", help="rebuild even when the cache is valid")
    q.set_defaults(func=_cmd_data_build)

    p = sub.add_parser("new-plugin", help="scaffold an installable third-party plugin package")
    p.add_argument("name", help="distribution name, e.g. manyview-myloss")
    p.add_argument("--dir", default=".", help="folder to create it in (default: here)")
    p.add_argument("--force", action="store_true", help="overwrite an existing folder's files")
    p.add_argument(
        "--kind",
        choices=("loss", "objective"),
        default="loss",
        help="loss: one loss (default); objective: a recipe, a loss and a teacher",
    )
    p.set_defaults(func=_cmd_new_plugin)
    _add_plugin_commands(sub, command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # The top-level options take no values, so the first other word is the command.
    command = next((word for word in argv if not word.startswith("-")), None)
    try:
        parser = build_parser(command)
    except PluginCommandError as exc:
        print(f"manyview {command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # while the plugins load
        print("manyview: interrupted (Ctrl-C)", file=sys.stderr)
        return 130
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:  # Ctrl-C at any moment: one line, the shell's 130
        print(f"manyview {args.command}: interrupted (Ctrl-C)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
