"""Shared fixtures for the whole suite."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

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
