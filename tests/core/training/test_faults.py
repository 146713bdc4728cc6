"""A run killed with SIGKILL (or stopped with Ctrl-C) at any moment resumes to the same
final weights, bit for bit, as a run that was never interrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from manyview.training.checkpoint import save_checkpoint

pytestmark = pytest.mark.slow


def _start(config: Path, out: Path, *extra: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MANYVIEW_")}
    return subprocess.Popen(
        [sys.executable, "-m", "manyview", "train", str(config), "--out", str(out), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _wait_for_step(out: Path, step: int, proc: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    metrics = out / "metrics.jsonl"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before step {step}: {proc.stderr.read()}")
        if metrics.exists():
            for line in metrics.read_text().splitlines():
                try:
                    if json.loads(line)["step"] >= step:
                        return
                except (json.JSONDecodeError, KeyError):
                    pass
        time.sleep(0.01)
    raise AssertionError(f"step {step} not reached in {timeout} s")


def _resume(out: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MANYVIEW_")}
    return subprocess.run(
        [sys.executable, "-m", "manyview", "train", "--resume", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def _weights(out: Path) -> dict[str, torch.Tensor]:
    return load_file(out / "checkpoints" / "last" / "model.safetensors")


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, tiny_toml):
    tmp = tmp_path_factory.mktemp("reference")
    config = tmp / "tiny.toml"
    config.write_text(tiny_toml(steps=24, every=3))
    proc = _start(config, tmp / "run")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return config, _weights(tmp / "run")


@pytest.mark.parametrize("kill_after", [4, 11])
def test_sigkill_then_resume_is_bit_identical(uninterrupted, tmp_path, kill_after):
    config, expected = uninterrupted
    out = tmp_path / "run"
    proc = _start(config, out)
    _wait_for_step(out, kill_after, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    done = _resume(out)
    assert done.returncode == 0, done.stderr
    assert _same(_weights(out), expected)
    steps = [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 24  # no duplicated log lines


def test_kill_while_writing_a_checkpoint_leaves_a_usable_run(uninterrupted, tmp_path):
    """Simulate a kill in the middle of a checkpoint write and of a log line: the partial
    files are ignored and cleaned, and the resumed run still ends identical."""
    config, expected = uninterrupted
    out = tmp_path / "run"
    proc = _start(config, out)
    _wait_for_step(out, 7, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    ckpts = out / "checkpoints"
    partial = ckpts / ".step-99-abc"
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"\x00" * 10)  # half-written
    with open(out / "metrics.jsonl", "a") as fh:
        fh.write('{"step": 8, "lo')  # a line cut by the kill
    done = _resume(out)
    assert done.returncode == 0, done.stderr
    assert not partial.exists()
    assert _same(_weights(out), expected)


def test_ctrl_c_saves_and_exits_cleanly(uninterrupted, tmp_path):
    config, expected = uninterrupted
    out = tmp_path / "run"
    proc = _start(config, out)
    _wait_for_step(out, 5, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "--resume" in err and "SIGINT: stopped at step" in err
    stopped = int(err.split("stopped at step ")[1].split(";")[0])
    assert (out / "checkpoints" / f"step-{stopped}").is_dir()
    done = _resume(out)
    assert done.returncode == 0, done.stderr
    assert _same(_weights(out), expected)


def test_checkpoint_write_is_atomic(tmp_path):
    """A failure while writing leaves no step directory and keeps the previous 'last'."""
    root = tmp_path / "ckpt"
    save_checkpoint(root, 1, {"w": torch.ones(2)}, {"step": 1})

    class Unsaveable:
        def __reduce__(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        save_checkpoint(root, 2, {"w": torch.zeros(2)}, {"step": 2, "bad": Unsaveable()})
    assert not (root / "step-2").exists()
    assert (root / "last").resolve().name == "step-1"
    assert [p.name for p in root.iterdir() if p.name.startswith(".step")] == []
