"""``manyview demo``: train the registered configuration ``demo``, benchmark it, print.

The demo is whatever an installed plugin registers as the configuration ``demo``:
manyview-digits3 registers the tri-modal digits demo (digit images, digits spoken by eSpeak
NG voices — the test split's voices never trained on — and digit words, trained together
with one ``mv_infonce`` call over the three modalities, offline, on the CPU, in a few
minutes). The run is benchmarked by the ``crossmodal`` suite against the untrained model and
the main rows are printed. Without such a plugin the command says which package to install.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

DEMO = "demo"
"""The registered configuration ``manyview demo`` trains."""

DEMO_PACKAGE = "manyview-digits3"
"""The distribution that registers it."""


def demo_config() -> Path:
    """The TOML file of the registered configuration ``demo``.

    Raises:
        ConfigError: no installed plugin registers it (the message names the package).
    """
    import manyview
    from manyview.config import ConfigError
    from manyview.configs import resolve

    names = manyview.available("config")  # an ambiguous name is listed qualified
    if DEMO not in names and not any(name.endswith(f":{DEMO}") for name in names):
        raise ConfigError(
            f"no installed plugin registers the {DEMO!r} configuration; install "
            f"{DEMO_PACKAGE} (pip install {DEMO_PACKAGE}, or pip install 'manyview[demo]')"
        )
    return resolve(DEMO)


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

    config_path = demo_config()
    sets = list(overrides or [])
    if steps is not None:
        sets.append(f"run.steps={int(steps)}")
    config = load_config(config_path, sets)
    out = Path(out) if out is not None else Path("runs") / f"demo-{time.strftime('%Y%m%d-%H%M%S')}"
    data = config["data"]["name"]
    losses = " + ".join(loss["name"] for loss in config.get("losses", [])) or "training"
    print(
        f"manyview demo: {data} ({' + '.join(config['modalities'])}), "
        f"{config['run']['steps']} steps of {losses} on {config['run']['device']}; "
        f"outputs in {out}",
        file=sys.stderr,
    )
    start = time.perf_counter()
    print(f"building or loading {data} (cached after the first run) ...", file=sys.stderr)
    Trainer(config, out).fit()
    trained = time.perf_counter() - start
    print("benchmarking against the untrained model ...", file=sys.stderr)
    result = crossmodal.run(out, out=out / "bench")
    print(_summary(result["rows"]))
    print(f"\ntrained in {trained:.0f} s; full tables: {out / 'bench' / 'bench.md'}")
    print("plots: " + ", ".join(f for f in result.get("files", []) if f.endswith(".png")))
    return result
