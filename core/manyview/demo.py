"""``manyview demo``: the tri-modal digits demo, offline, on the CPU, in a few minutes.

Builds ``digits3`` (digit images, digits spoken by eSpeak NG voices — the test split's voices
never trained on — and digit words), trains image + speech + text together with one
``mv_infonce`` call over the three modalities, runs the ``crossmodal`` benchmark against the
untrained model, and prints the table.
"""

from __future__ import annotations

import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

CONFIG = "digits3-mv_infonce.toml"


def packaged_config(name: str) -> Path | None:
    """A configuration shipped inside the package (``manyview/configs/NAME[.toml]``)."""
    folder = resources.files("manyview") / "configs"
    for candidate in (name, f"{name}.toml"):
        path = folder / candidate
        if path.is_file():
            return Path(str(path))
    return None


def _summary(rows: list[dict[str, Any]]) -> str:
    lines = ["| measure | query -> target | trained | random-init |", "|---|---|---:|---:|"]
    for row in rows:
        task, metric = row["task"], row["metric"]
        wanted = (task == "retrieval_class" and metric == "R@1") or task in (
            "zero_shot",
            "linear_probe",
        )
        if wanted:
            pair = (
                row["query"]
                if row.get("target") in (None, "-")
                else f"{row['query']} -> {row['target']}"
            )
            base = row.get("baseline")
            lines.append(
                f"| {task} {metric} | {pair} | {row['value']:.3f} | "
                f"{'-' if base is None else f'{base:.3f}'} |"
            )
    return "\n".join(lines)


def run_demo(
    out: str | Path | None = None, *, steps: int | None = None, overrides: list[str] | None = None
) -> dict[str, Any]:
    """Train and benchmark the demo; return the benchmark's result."""
    from manyview.benchmarks import crossmodal
    from manyview.config import load_config
    from manyview.training.trainer import Trainer

    config_path = packaged_config(CONFIG)
    if config_path is None:  # pragma: no cover - a broken installation
        raise FileNotFoundError(f"the demo configuration {CONFIG} is missing from the package")
    sets = list(overrides or [])
    if steps is not None:
        sets.append(f"run.steps={int(steps)}")
    config = load_config(config_path, sets)
    out = Path(out) if out is not None else Path("runs") / f"demo-{time.strftime('%Y%m%d-%H%M%S')}"
    print(
        f"manyview demo: digits3 (image + speech + text), {config['run']['steps']} steps of "
        f"mv_infonce on {config['run']['device']}; outputs in {out}",
        file=sys.stderr,
    )
    start = time.perf_counter()
    print("building or loading digits3 (cached after the first run) ...", file=sys.stderr)
    Trainer(config, out).fit()
    trained = time.perf_counter() - start
    print("benchmarking against the untrained model ...", file=sys.stderr)
    result = crossmodal.run(out, out=out / "bench")
    print(_summary(result["rows"]))
    print(f"\ntrained in {trained:.0f} s; full tables: {out / 'bench' / 'bench.md'}")
    print("plots: " + ", ".join(f for f in result.get("files", []) if f.endswith(".png")))
    return result
