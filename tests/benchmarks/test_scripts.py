"""The scripts in ``benchmarks/`` still run: each once with the smallest arguments, checking
what it prints and writes (not the numbers, which docs/benchmarks.md records)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "benchmarks"

pytestmark = pytest.mark.slow


def _run(run_python, *args: str, timeout: float = 300):
    result = run_python(*args, cwd=ROOT, timeout=timeout)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_loss_speed_tables_json_and_plot(run_python, tmp_path: Path) -> None:
    out = tmp_path / "speed.json"
    script = str(SCRIPTS / "loss_speed.py")
    printed = _run(
        run_python,
        script,
        "--families", "supcon", "mv_infonce",
        "--sizes", "32", "--memory-sizes", "32", "--repeats", "1",
        "--json", str(out),
    )  # fmt: skip
    for heading in (
        "## mv_infonce, D = 128: forward + backward",
        "## supcon, D = 128: peak memory",
    ):
        assert heading in printed
    run = json.loads(out.read_text())
    got = {(r["family"], r["impl"], r["kind"]) for r in run["results"]}
    for family in ("supcon", "mv_infonce"):
        for impl in ("manyview tiled", "manyview dense"):
            for kind in ("time", "memory"):
                assert (family, impl, kind) in got
    times = [
        r["value"]
        for r in run["results"]
        if r["impl"].startswith("manyview") and r["kind"] == "time"
    ]
    assert all(isinstance(v, float) and v > 0 for v in times), times
    assert run["matmul_tflops"] > 0
    if importlib.util.find_spec("pytorch_metric_learning"):  # the peer, side by side
        assert ("supcon", "PML SupConLoss", "time") in got

    again = _run(run_python, script, "--tables-from", str(out))
    assert "| 32 |" in again and "## supcon, D = 128" in again
    png = tmp_path / "speed.png"
    _run(run_python, script, "--plot", str(png), "--plot-from", str(out))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_gradcache_memory(run_python, tmp_path: Path) -> None:
    out = tmp_path / "gc.json"
    printed = _run(
        run_python,
        str(SCRIPTS / "gradcache_memory.py"),
        "--sizes", "48", "--chunk", "16", "--check-size", "40", "--repeats", "1",
        "--json", str(out),
    )  # fmt: skip
    assert "| 48 |" in printed
    run = json.loads(out.read_text())
    assert run["gradient_difference"] < 1e-10  # float64: GradCache equals the direct gradient
    assert {r["method"] for r in run["rows"]} == {"direct", "gradcache"}
    assert all(r["bytes"] >= 0 and r["seconds"] > 0 for r in run["rows"]), run["rows"]


def test_trainer_overhead(run_python) -> None:
    printed = _run(
        run_python, str(SCRIPTS / "trainer_overhead.py"), "--steps", "4", "--repeats", "1"
    )
    assert "| manyview Trainer |" in printed and "| overhead |" in printed


def test_fidelity_multiview_table_from_the_recorded_results(run_python) -> None:
    recorded = ROOT / "benchmarks" / "results" / "fidelity_multiview.json"
    printed = _run(
        run_python, str(SCRIPTS / "fidelity_multiview.py"), "--table-from", str(recorded)
    )
    assert "mv_dhel" in printed and "trimodal" in printed


def test_vision_views(run_python) -> None:
    pytest.importorskip("manyview_vision")
    printed = _run(
        run_python,
        str(SCRIPTS / "vision_views.py"),
        "--batch", "4", "--sizes", "32", "--repeats", "1",
    )  # fmt: skip
    assert "| 32x32 |" in printed and "speed-up" in printed


def test_the_gpu_scripts_parse_without_a_gpu(run_python) -> None:
    """The loss engine's GPU run (benchmarks/gpu_loss_engine.sh) is valid bash, and the kernel
    check it calls imports and shows its options on a machine without CUDA."""
    import subprocess

    check = subprocess.run(["bash", "-n", str(SCRIPTS / "gpu_loss_engine.sh")], capture_output=True)
    assert check.returncode == 0, check.stderr
    printed = _run(run_python, str(SCRIPTS / "loss_speed_gpu_check.py"), "--help")
    assert "--sweep" in printed
