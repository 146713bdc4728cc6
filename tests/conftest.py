"""Shared fixtures for the whole suite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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
