"""Contract checks for benchmarks (``docs/architecture.md``, "Benchmark").

A benchmark is called as ``fn(run, *, out=None, **options)`` with a :class:`manyview.Run`
(or any object with ``modalities`` and ``encode(modality, inputs)``, and the run's
``dataset(split)`` and ``baseline()``) and returns ``{"rows": [...], "meta": {...}, "files":
[...]}``: every row has the keys of :data:`manyview.benchmarks.suites.ROW_KEYS`, every
file it names exists, and with ``out`` it writes there.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import manyview

__all__ = ["BenchmarkContractTests", "check_benchmark", "tiny_run"]


def tiny_run(tmp_path: Path, config: str | None = None) -> Any:
    """A trained run of a few seconds, loaded: ``config`` (a TOML text), by default the
    ``contrastive`` recipe's ``example_config`` (two modalities of ``synthetic``)."""
    from manyview.config import load_config
    from manyview.recipes.contrastive import ContrastiveRecipe
    from manyview.training.trainer import Trainer

    config = ContrastiveRecipe.example_config if config is None else config

    path = Path(tmp_path) / "tiny.toml"
    path.write_text(config)
    Trainer(load_config(path), Path(tmp_path) / "run", progress=False).fit()
    return manyview.load_run(Path(tmp_path) / "run")


def check_benchmark(name: str, run: Any, out: Path, **options: Any) -> dict[str, Any]:
    """Run benchmark ``name`` on ``run`` writing to ``out``; check its result."""
    from manyview.benchmarks.suites import check_rows

    fn = manyview.entry("benchmark", name).load()
    result = fn(run, out=out, **options)
    assert isinstance(result, dict) and "rows" in result, (
        f"benchmark {name!r} must return a dict with 'rows', got {type(result).__name__}"
    )
    rows = check_rows(result["rows"], name)
    assert rows, f"benchmark {name!r} returned no rows"
    for row in rows:
        value = row["value"]
        assert isinstance(value, int | float) and math.isfinite(value), (
            f"benchmark {name!r}: {row['task']} {row['metric']} is {value!r}, not a finite number"
        )
    for file in result.get("files", []):
        assert Path(file).is_file(), f"benchmark {name!r} names {file}, which does not exist"
    return result


class BenchmarkContractTests:
    """pytest mixin: set ``name`` (a registered benchmark); override :meth:`run` to give
    it a run of your own (default: :func:`tiny_run`)."""

    name: str = ""

    def run(self, tmp_path: Path) -> Any:
        return tiny_run(tmp_path)

    def test_benchmark_contract(self, tmp_path: Path) -> None:
        check_benchmark(self.name, self.run(tmp_path), tmp_path / "bench")
