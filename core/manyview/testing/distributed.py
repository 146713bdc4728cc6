"""Check that a loss under torch.distributed trains exactly like one process on the whole
batch: the engine behind :func:`manyview.testing.check_distributed_equivalence`.

The check spawns W CPU processes (gloo on 127.0.0.1, a free port) that import this module
(``python -m manyview.testing.distributed``). Each rank takes its contiguous shard
of a fixed float64 batch, runs it through a small linear encoder and the loss wrapped in
DistributedDataParallel under each gather mode, and writes back its loss value, its
parameter gradients (after DDP's average) and the loss's buffers. The calling process
computes the same on the whole batch in one process and compares.

What must hold (the argument is in :class:`manyview.losses.base.MultiViewLoss`):

- every parameter gradient (the encoder's and the loss's own) equals one process's;
- the ranks' average loss equals one process's loss, and in ``"full"`` mode, or when the
  loss has no ``compute_local`` and falls back to it, every rank's loss does;
- the loss's buffers (per-sample state such as iSogCLR's) equal one process's on every rank.

Each rank seeds torch's global generator with ``seed + rank`` (as the trainer does), the
single process with ``seed``: a loss that draws random numbers must make every rank use the
same draw (rank 0's) to pass.

The loss is built by name in every process (:func:`manyview.testing.examples.build`), so it
must be registered through an installed plugin (an entry point), not only in the calling
process. The ranks stay up between checks (:func:`pool`), so only the first check of a
session pays for starting them; they end with the calling process. POSIX only (it waits on
pipes with ``select``).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import select
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from manyview.testing.examples import build

__all__ = [
    "PER_INSTANCE",
    "RankPool",
    "case",
    "check_distributed_equivalence",
    "check_many",
    "compare",
    "pool",
    "reference",
]

#: keyword inputs that are per instance: each rank gets its rows (the loss gathers them)
PER_INSTANCE = ("labels", "index")


def case(
    name: str,
    *,
    kwargs: Mapping[str, Any] | None = None,
    inputs: Mapping[str, Any] | None = None,
    modes: Sequence[str] = ("local_anchors", "full"),
    n: int = 8,
    m: int = 2,
    d: int = 6,
    seed: int = 0,
) -> dict[str, Any]:
    """One loss to check: ``name`` built with ``kwargs``, a global batch of ``n`` instances
    with ``m`` views of size ``d``; ``inputs`` are the keyword inputs of the whole batch
    (default: the loss's ``example_inputs``); ``labels``/``index`` are split across ranks,
    anything else (a SupCon ``mask``) goes whole to every rank."""
    from manyview.distributed import GATHER_MODES

    for mode in modes:
        if mode not in GATHER_MODES or mode == "none":
            raise ValueError(f"modes must be 'local_anchors' and/or 'full', got {mode!r}")
    return {
        "name": name,
        "kwargs": dict(kwargs or {}),
        "inputs": None if inputs is None else dict(inputs),
        "modes": tuple(modes),
        "n": int(n),
        "m": int(m),
        "d": int(d),
        "seed": int(seed),
    }


class _Model(nn.Module):
    """A linear encoder applied to every view, then the loss."""

    def __init__(self, encoder: nn.Module, loss: nn.Module) -> None:
        super().__init__()
        self.encoder, self.loss = encoder, loss

    def forward(self, x: Tensor, **inputs: Any) -> Tensor:
        return self.loss(self.encoder(x), **inputs)


def _setup(spec: Mapping[str, Any]) -> tuple[_Model, Tensor, dict[str, Any]]:
    """The model (encoder + loss, float64, training mode), the whole batch and its inputs;
    the same in every process."""
    n, m, d = spec["n"], spec["m"], spec["d"]
    g = torch.Generator().manual_seed(spec["seed"] + 12345)
    encoder = nn.Linear(d, d, dtype=torch.float64)
    with torch.no_grad():
        encoder.weight.copy_(torch.randn(d, d, generator=g, dtype=torch.float64) / d**0.5)
        encoder.bias.copy_(0.1 * torch.randn(d, generator=g, dtype=torch.float64))
    loss = build("loss", spec["name"], **spec["kwargs"]).to(torch.float64)
    x = torch.randn(n, m, d, generator=g, dtype=torch.float64)
    inputs = spec["inputs"]
    if inputs is None:
        inputs = {}
        if hasattr(loss, "example_inputs"):
            _, inputs = loss.example_inputs(n, m, d, generator=g, dtype=torch.float64)
    return _Model(encoder, loss).train(), x, dict(inputs)


def _record(model: nn.Module, value: Tensor) -> dict[str, Any]:
    return {
        "loss": value.detach().clone(),
        "grads": {
            k: (None if p.grad is None else p.grad.detach().clone())
            for k, p in model.named_parameters()
            if p.requires_grad
        },
        "buffers": {k: b.detach().clone() for k, b in model.loss.named_buffers()},
    }


def reference(spec: Mapping[str, Any]) -> dict[str, Any]:
    """One process on the whole batch: loss value, parameter gradients, loss buffers."""
    with torch.random.fork_rng(devices=[]):  # leave the caller's generator alone
        torch.manual_seed(spec["seed"])
        model, x, inputs = _setup(spec)
        value = model(x, **inputs)
        value.backward()
    return _record(model, value)


def _run_rank(spec: Mapping[str, Any], mode: str, rank: int, world: int) -> dict[str, Any]:
    from torch.nn.parallel import DistributedDataParallel

    from manyview import distributed

    torch.manual_seed(spec["seed"] + rank)  # the ranks' generators differ, as in the trainer
    model, x, inputs = _setup(spec)
    n = spec["n"] // world
    rows = slice(rank * n, (rank + 1) * n)
    shard = {
        k: (v[rows] if k in PER_INSTANCE and isinstance(v, Tensor) else v)
        for k, v in inputs.items()
    }
    ddp = DistributedDataParallel(model)
    with distributed.gather_mode(mode):
        value = ddp(x[rows], **shard)
    value.backward()
    return _record(model, value)


def _worker_main() -> int:
    """Entry of a spawned rank: join the group, then run each job named on stdin (a spec
    file and an output path, tab-separated) until stdin closes."""
    import torch.distributed as dist

    protocol, sys.stdout = sys.stdout, sys.stderr  # stdout carries only the replies
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    torch.set_num_threads(1)
    dist.init_process_group("gloo", timeout=timedelta(seconds=60))
    print("ready", file=protocol, flush=True)
    for line in sys.stdin:
        spec_path, out_path = line.rstrip("\n").split("\t")
        try:
            specs = torch.load(spec_path, weights_only=False)
            results = [
                {mode: _run_rank(spec, mode, rank, world) for mode in spec["modes"]}
                for spec in specs
            ]
            torch.save(results, out_path)
        except BaseException:
            Path(f"{out_path}.error").write_text(traceback.format_exc())
            print("error", file=protocol, flush=True)
            return 1  # the other ranks may be stuck in a collective: the pool is closed
        print("done", file=protocol, flush=True)
    dist.destroy_process_group()
    return 0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RankPool:
    """``world_size`` spawned gloo ranks (CPU, 127.0.0.1) that stay up between checks, so
    only the first check pays for starting the processes.

    Raises (from :meth:`run`):
        RuntimeError: a rank failed (its traceback is in the message) or timed out; the
            pool is then closed and the next check starts a new one.
    """

    def __init__(self, world_size: int, timeout: float = 180.0) -> None:
        self.world_size, self.timeout = world_size, timeout
        self.dir = tempfile.TemporaryDirectory(prefix="manyview-dist-")
        env = {
            **os.environ,
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(_free_port()),
            "WORLD_SIZE": str(world_size),
            "OMP_NUM_THREADS": "1",
        }
        self.logs = [Path(self.dir.name, f"rank{r}.log") for r in range(world_size)]
        self.procs = []
        for r in range(world_size):
            with self.logs[r].open("w") as log:
                self.procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "manyview.testing.distributed"],
                        env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        stderr=log,
                        text=True,
                        bufsize=1,
                    )
                )
        self.jobs = 0
        self._expect("ready", time.monotonic() + timeout)

    def _fail(self, rank: int, what: str, text: str | None = None) -> None:
        """Stop every rank (the others may wait in a collective forever), close the pool and
        raise with ``text`` or the failing rank's log."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        if text is None:
            text = self.logs[rank].read_text()[-4000:] if self.logs[rank].exists() else ""
        self.close()
        raise RuntimeError(f"rank {rank} of {self.world_size} {what}:\n{text}")

    def _expect(self, word: str, deadline: float, outs: Sequence[str] | None = None) -> None:
        """Wait for the reply ``word`` from every rank; a rank's error file (its traceback)
        or log ends up in the RuntimeError otherwise."""
        pending = dict(enumerate(self.procs))
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                self._fail(next(iter(pending)), f"timed out after {self.timeout:g} s")
            streams = [p.stdout for p in pending.values()]
            ready, _, _ = select.select(streams, [], [], left)
            for rank, proc in list(pending.items()):
                if proc.stdout not in ready:
                    continue
                reply = proc.stdout.readline().strip()  # type: ignore[union-attr]
                if reply == word:
                    del pending[rank]
                    continue
                error = Path(f"{outs[rank]}.error") if outs else None
                if error is not None and error.exists():
                    self._fail(rank, "failed", error.read_text())
                self._fail(rank, f"exited (code {proc.poll()})")

    def run(self, specs: Sequence[Mapping[str, Any]]) -> list[list[dict[str, Any]]]:
        """Run ``specs`` (from :func:`case`) on every rank; return each rank's results."""
        self.jobs += 1
        spec_path = os.path.join(self.dir.name, f"spec{self.jobs}.pt")
        torch.save(list(specs), spec_path)
        outs = [
            os.path.join(self.dir.name, f"out{self.jobs}.rank{r}.pt")
            for r in range(self.world_size)
        ]
        for rank, (proc, out) in enumerate(zip(self.procs, outs, strict=True)):
            try:
                proc.stdin.write(f"{spec_path}\t{out}\n")  # type: ignore[union-attr]
                proc.stdin.flush()  # type: ignore[union-attr]
            except OSError:
                self._fail(rank, f"exited (code {proc.poll()})")
        self._expect("done", time.monotonic() + self.timeout, outs)
        return [torch.load(out, weights_only=False) for out in outs]

    @property
    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs)

    def close(self) -> None:
        """Stop the ranks (closing stdin ends them; stragglers are killed)."""
        for proc in self.procs:
            with contextlib.suppress(OSError):
                proc.stdin.close()  # type: ignore[union-attr]
        deadline = time.monotonic() + 5
        for proc in self.procs:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            with contextlib.suppress(OSError):
                proc.stdout.close()  # type: ignore[union-attr]
        if _POOLS.get(self.world_size) is self:
            del _POOLS[self.world_size]
        self.dir.cleanup()


_POOLS: dict[int, RankPool] = {}


def pool(world_size: int = 2, timeout: float = 180.0) -> RankPool:
    """The running pool of ``world_size`` ranks, started on first use and closed at exit."""
    current = _POOLS.get(world_size)
    if current is None or not current.alive:
        if current is not None:
            current.close()
        current = _POOLS[world_size] = RankPool(world_size, timeout)
    current.timeout = timeout
    return current


@atexit.register
def _close_pools() -> None:
    for p in list(_POOLS.values()):
        p.close()


def _close(a: Tensor, b: Tensor, atol: float, rtol: float) -> tuple[bool, float]:
    diff = float((a - b).abs().max()) if a.numel() else 0.0
    return bool(torch.allclose(a, b, atol=atol, rtol=rtol)), diff


def compare(
    spec: Mapping[str, Any],
    ranks: Sequence[Mapping[str, Any]],
    ref: Mapping[str, Any],
    *,
    atol: float,
    rtol: float,
) -> list[str]:
    """The mismatches between the ranks' results for one case and one process's."""
    from manyview.losses.base import MultiViewLoss

    problems = []
    name = spec["name"]
    local = None
    for mode in spec["modes"]:
        where = f"{name} (gather mode {mode!r}, {len(ranks)} ranks)"
        per_rank = [r[mode] for r in ranks]
        mean = torch.stack([r["loss"] for r in per_rank]).mean()
        ok, diff = _close(mean, ref["loss"], atol, rtol)
        if not ok:
            problems.append(
                f"{where}: the ranks' mean loss {mean.item():.12g} != one process's "
                f"{ref['loss'].item():.12g} (|diff| {diff:.3g})"
            )
        if local is None:
            loss = build("loss", name, **spec["kwargs"])
            local = isinstance(loss, MultiViewLoss) and loss.has_local_anchors()
        if mode == "full" or not local:
            for rank, r in enumerate(per_rank):
                ok, diff = _close(r["loss"], ref["loss"], atol, rtol)
                if not ok:
                    problems.append(
                        f"{where}: rank {rank}'s loss {r['loss'].item():.12g} != one process's "
                        f"{ref['loss'].item():.12g} (|diff| {diff:.3g}); every rank computes the "
                        "global loss in this mode"
                    )
        for rank, r in enumerate(per_rank):
            for key, want in ref["grads"].items():
                got = r["grads"].get(key)
                if (want is None) != (got is None):
                    problems.append(
                        f"{where}: rank {rank}: {key} has "
                        f"{'no' if got is None else 'a'} gradient, one process "
                        f"{'none' if want is None else 'one'}"
                    )
                    continue
                if want is None:
                    continue
                ok, diff = _close(got, want, atol, rtol)
                if not ok:
                    scale = float(want.abs().max())
                    problems.append(
                        f"{where}: rank {rank}: the gradient of {key} differs from one process "
                        f"on the whole batch (max |diff| {diff:.3g}, max |grad| {scale:.3g}; "
                        f"atol {atol:g}, rtol {rtol:g})"
                    )
            for key, want in ref["buffers"].items():
                got = r["buffers"].get(key)
                if got is None or got.shape != want.shape:
                    problems.append(f"{where}: rank {rank}: buffer {key} is missing or reshaped")
                    continue
                if want.is_floating_point():
                    ok, diff = _close(got, want, atol, rtol)
                else:
                    ok, diff = bool(torch.equal(got, want)), float("nan")
                if not ok:
                    problems.append(
                        f"{where}: rank {rank}: the loss's state {key} differs from one "
                        f"process's after the step (max |diff| {diff:.3g})"
                    )
    return problems


def check_many(
    specs: Iterable[Mapping[str, Any]],
    *,
    world_size: int = 2,
    atol: float = 1e-10,
    rtol: float = 1e-8,
    timeout: float = 180.0,
) -> None:
    """Check several cases (from :func:`case`) with one set of spawned ranks (process start
    dominates the cost); raise one AssertionError listing every mismatch."""
    specs = list(specs)
    for spec in specs:
        if spec["n"] % world_size:
            raise ValueError(
                f"{spec['name']}: n = {spec['n']} must be a multiple of world_size = {world_size}"
            )
        if spec["n"] // world_size < 2:
            raise ValueError(f"{spec['name']}: each rank needs at least 2 instances")
    refs = [reference(spec) for spec in specs]
    ranks = pool(world_size, timeout).run(specs)
    problems = []
    for i, (spec, ref) in enumerate(zip(specs, refs, strict=True)):
        problems += compare(spec, [r[i] for r in ranks], ref, atol=atol, rtol=rtol)
    if problems:
        raise AssertionError(
            "under torch.distributed the loss does not train like one process on the whole "
            "batch:\n  " + "\n  ".join(problems)
        )


def check_distributed_equivalence(
    name: str,
    *,
    kwargs: Mapping[str, Any] | None = None,
    inputs: Mapping[str, Any] | None = None,
    world_size: int = 2,
    modes: Sequence[str] = ("local_anchors", "full"),
    n: int = 8,
    m: int = 2,
    d: int = 6,
    atol: float = 1e-10,
    rtol: float = 1e-8,
    seed: int = 0,
    timeout: float = 180.0,
) -> None:
    """Run loss ``name`` on ``world_size`` spawned gloo ranks (CPU) in each gather mode and
    check it against one process on the whole batch.

    The global batch has ``n`` instances (a multiple of ``world_size``) with ``m`` views of
    size ``d``, in float64, through a linear encoder wrapped, with the loss, in
    DistributedDataParallel. Checked: the encoder's and the loss's parameter gradients after
    DDP's average, the ranks' mean loss (and every rank's, where each computes the global
    loss), and the loss's buffers after the step. ``inputs`` are the whole batch's keyword
    inputs (default: the loss's ``example_inputs``); ``labels`` and ``index`` are split
    across the ranks. The loss must be registered through an installed plugin, since every
    rank builds it by name. Takes a few seconds (starting the processes).

    Example::

        from manyview.testing import check_distributed_equivalence

        def test_my_loss_distributed():
            check_distributed_equivalence("my_loss", kwargs={"temperature": 0.2}, m=3)

    Raises:
        AssertionError: a mismatch, naming the mode, the rank and the tensor.
        RuntimeError: a rank failed (with its traceback) or timed out.
    """
    spec = case(name, kwargs=kwargs, inputs=inputs, modes=modes, n=n, m=m, d=d, seed=seed)
    check_many([spec], world_size=world_size, atol=atol, rtol=rtol, timeout=timeout)


if __name__ == "__main__":
    sys.exit(_worker_main())
