"""Running several registered benchmarks on one checkpoint and merging their outputs.

The benchmark protocol (``docs/architecture.md``): a benchmark is any callable registered
through ``manyview_register_benchmarks``, called as ``fn(run, *, out=None, **options)``
with ``run`` a :class:`manyview.Run` — the trained run, which embeds a batch of one
modality through ``run.encode(modality, inputs) -> (N, D)`` whatever recipe trained it,
lists ``run.modalities``, makes its datasets (``run.dataset(split)``) and its untrained twin
(``run.baseline()``) — and returning ``{"rows": [...], "meta": {...}, "files": [...]}``,
where every row has the keys of :data:`ROW_KEYS` (``target`` is ``None`` for a one-modality
score, ``baseline`` the random-init model's value or ``None``). With ``out`` it writes its
own ``bench.json``/``bench.md``/plots there.

:func:`run_suites` runs the named benchmarks (``"all"``: every registered one) in order:

* one suite: its files go to ``out`` itself (what ``manyview bench`` has always written);
* several: each suite writes to ``out/<suite>/``, and ``out/bench.json`` (every suite's
  rows, one flat list) and ``out/bench.md`` (each suite's tables) are merged.

A benchmark registered with ``requires="image_generator"`` (``generation``) needs a run
whose recipe generates images (:class:`manyview.runs.ImageGenerator`); ``requires =
"module:Protocol"`` names a plugin's own runtime-checkable protocol. ``"all"`` skips it
for any other run (listed in ``skipped`` and ``bench.md``); named explicitly, it runs and
says why it cannot.

Options a suite's signature does not take are not passed to it (a plugin benchmark need
not know ``templates``). A suite that raises, or returns rows without the required keys, is
reported in ``failed`` and in ``bench.md``, and the others still run: a broken plugin is
never fatal.
"""

from __future__ import annotations

import inspect
import json
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from manyview.benchmarks import BenchmarkError

ROW_KEYS = ("suite", "task", "query", "target", "metric", "value", "baseline")

__all__ = ["ROW_KEYS", "check_rows", "resolve", "run_suites", "unmet_requirement"]


def resolve(names: str | Sequence[str]) -> list[str]:
    """Suite names from ``"a,b"`` / ``["a", "b"]`` / ``"all"``, deduplicated, in order;
    unknown names raise the registry's ``LookupError`` (with close matches)."""
    import manyview

    if isinstance(names, str):
        names = [names]
    wanted = [n.strip() for part in names for n in part.split(",") if n.strip()]
    if not wanted:
        raise BenchmarkError("no benchmark suite named (e.g. --suite crossmodal)")
    out: list[str] = []
    for name in wanted:
        for one in manyview.available("benchmark") if name == "all" else [name]:
            manyview.entry("benchmark", one)  # raises with suggestions when unknown
            if one not in out:
                out.append(one)
    return out


def _explicit(names: str | Sequence[str]) -> set[str]:
    """The suite names given by name, not through ``"all"``."""
    if isinstance(names, str):
        names = [names]
    return {n.strip() for part in names for n in part.split(",") if n.strip() not in ("", "all")}


def unmet_requirement(name: str, run: Any) -> str | None:
    """Why benchmark ``name`` cannot score ``run``, or ``None`` when it can.

    A benchmark registered with ``requires`` names what the run's recipe must be:
    ``"image_generator"`` (:class:`manyview.runs.ImageGenerator`) or a ``"module:Attr"``
    string naming a ``typing.runtime_checkable`` protocol (or a class) of the plugin's own,
    e.g. manyview-diffusion's DDAE feature reader.
    """
    import pkgutil

    import manyview
    from manyview.runs import ImageGenerator, Run

    required = manyview.entry("benchmark", name).meta.get("requires")
    if not required:
        return None
    protocol = ImageGenerator if required == "image_generator" else None
    if protocol is None:
        try:
            protocol = pkgutil.resolve_name(str(required))
        except Exception as exc:
            return f"its requirement {required!r} cannot be loaded ({type(exc).__name__}: {exc})"
    target = run.recipe if isinstance(run, Run) else run
    if not isinstance(target, protocol):
        where = getattr(protocol, "__module__", "")
        return (
            f"the run's recipe {type(target).__name__} is not a "
            f"{where + '.' if where else ''}{protocol.__name__}"
        )
    return None


def _accepted(fn: Callable[..., Any], options: Mapping[str, Any]) -> dict[str, Any]:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # a builtin or C callable: pass everything
        return dict(options)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(options)
    return {k: v for k, v in options.items() if k in params}


def check_rows(rows: Any, suite: str) -> list[dict[str, Any]]:
    """The rows of a suite's result, checked: a list of dicts with :data:`ROW_KEYS`."""
    if not isinstance(rows, list):
        raise BenchmarkError(f"benchmark {suite!r} returned rows of type {type(rows).__name__}")
    for i, row in enumerate(rows):
        missing = [k for k in ROW_KEYS if not isinstance(row, Mapping) or k not in row]
        if missing:
            raise BenchmarkError(
                f"benchmark {suite!r} row {i} lacks {', '.join(missing)} (every row needs "
                f"{', '.join(ROW_KEYS)})"
            )
    return [dict(row) for row in rows]


def _folder(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _check_required(suites: Sequence[str], require: Sequence[str]) -> None:
    import manyview
    from manyview.registry import did_you_mean

    taken: set[str] = set()
    for name in suites:
        fn = manyview.entry("benchmark", name).load()
        try:
            params = inspect.signature(fn).parameters
        except (TypeError, ValueError):
            return  # a callable without a signature may take anything
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            return
        taken |= {p for p in params if p not in ("out",)} - {next(iter(params), "")}
    for key in require:
        if key not in taken:
            raise BenchmarkError(
                f"no suite of {', '.join(suites)} takes the option {key!r}"
                f"{did_you_mean(key, sorted(taken)) or ''}; they take: {', '.join(sorted(taken))}"
            )


def run_suites(
    names: str | Sequence[str],
    checkpoint: Any,
    *,
    out: str | Path | None = None,
    require: Sequence[str] = (),
    **options: Any,
) -> dict[str, Any]:
    """Run the benchmarks ``names`` on ``checkpoint`` (a run directory, a checkpoint step
    directory or a :class:`manyview.Run`, loaded once for every suite); return ``{"rows",
    "meta", "files", "failed", "skipped"}`` with ``failed`` and ``skipped`` lists of
    ``(suite, message)`` (skipped: a suite of ``"all"`` whose ``requires`` the run lacks).

    ``require`` names options that some suite must take (a suite's own options, such as
    ``shots``): one that none of them takes is a :class:`BenchmarkError` before anything
    runs, with a did-you-mean, so a typo is never silently ignored.

    A :class:`BenchmarkError` of the first suite is raised when it is the only one (the
    inputs are wrong, not the plugin); with several, every failure is collected.
    """
    import manyview
    from manyview.runs import Run, RunError, load_run

    suites = resolve(names)
    explicit = _explicit(names)
    out = Path(out) if out is not None else None
    if require:
        _check_required(suites, require)
    if not isinstance(checkpoint, Run):
        try:
            checkpoint = load_run(checkpoint, device=options.get("device", "cpu"))
        except RunError as exc:
            raise BenchmarkError(f"checkpoint: {exc}") from None
    rows: list[dict[str, Any]] = []
    metas: dict[str, Any] = {}
    files: list[str] = []
    failed: list[tuple[str, str]] = []
    skipped: list[tuple[str, str]] = []
    results: list[tuple[str, Mapping[str, Any]]] = []
    for name in suites:
        why = None if name in explicit else unmet_requirement(name, checkpoint)
        if why is not None:
            skipped.append((name, why))
            continue
        target = out if (out is None or len(suites) == 1) else out / _folder(name)
        try:
            fn = manyview.entry("benchmark", name).load()
            result = fn(checkpoint, out=target, **_accepted(fn, options))
            if not isinstance(result, Mapping) or "rows" not in result:
                raise BenchmarkError(
                    f"benchmark {name!r} must return a dict with 'rows', got "
                    f"{type(result).__name__}"
                )
            suite_rows = check_rows(result["rows"], name)
        except BenchmarkError as exc:
            if len(suites) == 1:
                raise
            failed.append((name, str(exc)))
            continue
        except Exception as exc:  # a broken plugin benchmark is reported, never fatal
            where = traceback.extract_tb(exc.__traceback__)[-1]
            failed.append(
                (name, f"{type(exc).__name__}: {exc} (at {where.filename}:{where.lineno})")
            )
            continue
        rows += suite_rows
        metas[name] = dict(result.get("meta", {}))
        files += [str(f) for f in result.get("files", [])]
        results.append((name, result))
    merged: dict[str, Any] = {
        "rows": rows,
        "meta": {"suites": suites, "per_suite": metas},
        "files": files,
        "failed": failed,
        "skipped": skipped,
    }
    if out is not None and (len(suites) > 1 or failed):
        merged["files"] = _write_merged(results, failed, out, skipped) + files
    return merged


def _write_merged(
    results: Sequence[tuple[str, Mapping[str, Any]]],
    failed: Sequence[tuple[str, str]],
    out: Path,
    skipped: Sequence[tuple[str, str]] = (),
) -> list[str]:
    from manyview.benchmarks import report

    out.mkdir(parents=True, exist_ok=True)
    rows = [row for _, result in results for row in result["rows"]]
    (out / "bench.json").write_text(json.dumps(rows, indent=1) + "\n")
    parts = [
        report.markdown(result["rows"], {"suite": name, **result.get("meta", {})})
        for name, result in results
    ]
    if failed:
        parts.append(
            "# Failed suites\n\n" + "\n".join(f"- `{name}`: {why}" for name, why in failed) + "\n"
        )
    if skipped:
        parts.append(
            "# Skipped suites\n\n" + "\n".join(f"- `{name}`: {why}" for name, why in skipped) + "\n"
        )
    (out / "bench.md").write_text("\n".join(parts))
    return [str(out / "bench.json"), str(out / "bench.md")]
