"""Shared fixtures for the whole suite."""

from __future__ import annotations

import csv
import json
import os
import site
import subprocess
import sys
import venv
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def fresh_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Reload the plugin manager before and after the test (env vars may change in it)."""
    from manyview import manager as plugins

    plugins.reload()
    yield
    monkeypatch.undo()
    plugins.reload()


@pytest.fixture
def run_python() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run this venv's Python in a subprocess with extra environment and sys.path entries."""

    def run(
        *args: str,
        path: list[Path] | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("MANYVIEW_")}
        if path:
            clean["PYTHONPATH"] = os.pathsep.join(str(p) for p in path)
        clean.update(env or {})
        return subprocess.run(
            [sys.executable, *args],
            capture_output=True,
            text=True,
            env=clean,
            cwd=cwd,
            timeout=timeout,
            check=False,
        )

    return run


class CliRun(NamedTuple):
    """What :func:`fresh_cli` saw: the subprocess's exit status and output, and which of
    the ``heavy`` modules were imported (``None`` when it did not get that far)."""

    returncode: int
    stdout: str
    stderr: str
    heavy: list[str] | None

    def rows(self) -> list[dict[str, Any]]:
        """The rows of every JSON list the commands printed, in order."""
        decoder, text, rows, pos = json.JSONDecoder(), self.stdout.rstrip(), [], 0
        while pos < len(text):
            value, pos = decoder.raw_decode(text, pos)
            rows.extend(value)
            while pos < len(text) and text[pos].isspace():
                pos += 1
        return rows


@pytest.fixture
def fresh_cli(run_python: Callable[..., subprocess.CompletedProcess[str]]) -> Callable[..., CliRun]:
    """Run ``manyview`` commands (argument lists) in a fresh interpreter, then import
    ``imports``, and report which of the ``heavy`` modules got imported on the way: the
    check that listing stays light. A command that fails ends the process with its status."""

    def run(*commands: Sequence[str], heavy: Sequence[str], imports: Sequence[str] = ()) -> CliRun:
        lines = ["import json, sys", "from manyview.cli import main"]
        for argv in commands:
            lines += [
                "try:",
                f"    status = main({list(argv)!r})",
                "except SystemExit as exit:",
                "    status = exit.code",
                "if status:",
                "    sys.exit(status)",
            ]
        lines += [f"import {module}" for module in imports]
        lines.append(
            f"print('HEAVY', json.dumps([m for m in {tuple(heavy)!r} if m in sys.modules]), "
            "file=sys.stderr)"
        )
        result = run_python("-c", "\n".join(lines))
        reported = [line for line in result.stderr.splitlines() if line.startswith("HEAVY ")]
        heavy_seen = json.loads(reported[-1].removeprefix("HEAVY ")) if reported else None
        return CliRun(result.returncode, result.stdout, result.stderr, heavy_seen)

    return run


def write_fake_distribution(
    site: Path,
    dist: str,
    entry_points: dict[str, str],
    modules: dict[str, str],
    version: str = "1.0",
) -> None:
    """Make ``site`` look like an installed distribution: a dist-info folder with its
    entry points (group ``manyview``) plus the given module sources."""
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = "\n".join(f"{name} = {target}" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[manyview]\n{lines}\n")
    for name, source in modules.items():
        path = site / (name.replace(".", "/") + ".py")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)


@pytest.fixture
def fake_distribution() -> Callable[..., None]:
    return write_fake_distribution


def core_only_site(target: Path) -> Path:
    """A folder that mirrors this environment's site-packages with symlinks, minus every
    distribution that registers ``manyview`` entry points (the plugins): what an
    environment holding only the core and its dependencies looks like. Dependencies of the
    plugins without entry points of their own (timm, diffusers, ...) stay visible."""
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


class CoreOnlyVenv:
    """A fresh virtual environment that sees the core and its dependencies only (through
    :func:`core_only_site`); :meth:`install` puts a plugin's wheel into it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env_dir = root / "venv"
        venv.EnvBuilder(with_pip=True).create(self.env_dir)
        self.python = self.env_dir / "bin" / "python"
        purelib = subprocess.run(
            [self.python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        core = core_only_site(root / "core-site")
        (Path(purelib) / "_manyview_core.pth").write_text(
            f"import site; site.addsitedir({str(core)!r})\n"
        )
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith(("MANYVIEW_", "PYTHON"))
        }

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``python *args`` in the environment (cwd: its root folder)."""
        return subprocess.run(
            [self.python, *args],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.root,
            timeout=300,
            check=False,
        )

    def install(self, project: Path, wheel_glob: str) -> Path:
        """Build the wheel of the workspace ``project`` offline (no build isolation, no
        index) and pip-install it without dependencies; returns the wheel."""
        wheels = self.root / "wheels"
        built = self.run(
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            str(wheels),
            str(project),
        )
        assert built.returncode == 0, built.stdout + built.stderr
        (wheel,) = wheels.glob(wheel_glob)
        installed = self.run("-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel))
        assert installed.returncode == 0, installed.stdout + installed.stderr
        return wheel


@pytest.fixture
def core_only_venv(tmp_path: Path) -> CoreOnlyVenv:
    """A virtual environment holding only the core (see :class:`CoreOnlyVenv`)."""
    return CoreOnlyVenv(tmp_path)
