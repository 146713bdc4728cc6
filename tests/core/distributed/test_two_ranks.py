"""Two real gloo ranks on 127.0.0.1: every loss, wrapped with a linear encoder in DDP,
gives the parameter gradients of one process on the whole batch in both gather modes; and
the trainer on two ranks ends with the weights of one process on the global batch.

The loss checks share one pair of rank processes (``manyview.testing.distributed.pool``),
so only the first pays for starting them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import manyview.testing.distributed as td
from manyview.config import load_config
from manyview.testing import check_distributed_equivalence
from manyview.training.checkpoint import load_checkpoint
from manyview.training.trainer import Trainer

pytestmark = pytest.mark.slow

LABELS = torch.tensor([0, 1, 2, 0, 1, 2, 0, 0])
MASK = torch.rand(8, 8, generator=torch.Generator().manual_seed(1)) > 0.5

CASES = [
    # losses with their own local anchors (both modes exact)
    ("infonce", {}, 3, None),
    ("mv_infonce", {}, 3, None),
    ("mv_infonce", {"intra_view_negatives": False}, 3, None),
    ("supcon", {}, 2, {"labels": LABELS}),
    ("supcon", {"variant": "in", "anchors": "one"}, 3, {"labels": LABELS}),
    ("supcon", {}, 1, {"mask": MASK}),  # a global mask, the same on every rank
    ("clip", {}, 2, None),
    ("clip", {"learnable": True}, 2, None),
    ("siglip", {}, 2, None),
    ("mv_dhel", {}, 3, None),
    ("dhel", {"include_augs": False}, 2, None),
    ("dcl", {}, 3, None),
    ("dclw", {"detach_weights": False}, 2, None),
    ("pvc", {"method": "arithmetic"}, 3, None),
    # the tiled engine: local anchors against gathered candidates, masks from global ids
    ("infonce", {"engine": "tiled"}, 3, None),
    ("mv_infonce", {"engine": "tiled", "intra_view_negatives": False}, 3, None),
    ("supcon", {"engine": "tiled"}, 2, {"labels": LABELS}),
    ("clip", {"engine": "tiled", "learnable": True}, 2, None),
    ("mv_dhel", {"engine": "tiled"}, 3, None),
    ("dcl", {"engine": "tiled"}, 3, None),
    ("isogclr", {"engine": "tiled"}, 3, None),
    # fallback to the full global loss on every rank
    ("isogclr", {}, 3, None),  # per-sample state: the same update on every rank
    ("supremix", {}, 2, None),  # random mixtures: every rank uses rank 0's draw
    ("pwe", {"base": "infonce"}, 3, None),  # calls a loss: it must not gather twice
]


@pytest.mark.parametrize(
    ("name", "kwargs", "m", "inputs"),
    CASES,
    ids=[f"{c[0]}{'-tiled' * (c[1].get('engine') == 'tiled')}-{i}" for i, c in enumerate(CASES)],
)
def test_loss_gradients_equal_one_process(name, kwargs, m, inputs):
    check_distributed_equivalence(
        name, kwargs=kwargs, inputs=inputs, m=m, n=8, d=6, atol=1e-12, rtol=1e-10
    )


def test_the_check_catches_ranks_that_do_not_share_candidates():
    """Gather mode "none" (each rank its own batch) is a different loss: the comparison
    must fail, so the passing checks above are not vacuous."""
    spec = {**td.case("infonce", m=2), "modes": ("none",)}
    ref = td.reference(spec)
    ranks = td.pool(2).run([spec])
    problems = td.compare(spec, [r[0] for r in ranks], ref, atol=1e-12, rtol=1e-10)
    assert any("gradient of encoder.weight" in p for p in problems), problems


# ---------------------------------------------------------------- the trainer on 2 ranks

# The core's two-modality configuration (tests/core/conftest.py), 4 steps. No dropout and
# no random views: those draw from per-rank generators (seeded with the rank), which one
# process cannot reproduce. mv_infonce runs on local anchors, isogclr falls back to the
# full loss and keeps per-sample state.
FOUR_STEPS = ("run.steps=4", "run.checkpoint_every=2")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_two_ranks(args: list[str], timeout: float) -> list[str]:
    """Run ``python ARGS`` as ranks 0 and 1 of a gloo group on 127.0.0.1 (torchrun's
    environment variables); every rank must exit 0. Returns their outputs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MANYVIEW_")}
    env |= {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "WORLD_SIZE": "2"}
    procs = [
        subprocess.Popen(
            [sys.executable, *args],
            env={**env, "RANK": str(rank), "LOCAL_RANK": str(rank)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in range(2)
    ]
    try:
        logs = [p.communicate(timeout=timeout)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for rank, p in enumerate(procs):
        assert p.returncode == 0, f"rank {rank} failed:\n{logs[rank]}"
    return logs


@pytest.mark.parametrize("gradcache", [False, True], ids=["ddp", "gradcache"])
def test_trainer_on_two_ranks_matches_one_process_on_the_global_batch(
    tmp_path: Path, gradcache: bool, two_modalities
):
    """Also with [run] gradcache_chunk: no DDP wrapper, the gradients averaged by hand."""
    per_rank = 8
    two = tmp_path / "two.toml"
    chunk = ["run.gradcache_chunk=3"] if gradcache else []
    two.write_text(two_modalities([*FOUR_STEPS, f"run.batch_size={per_rank}", *chunk]))
    one = tmp_path / "one.toml"
    one.write_text(two_modalities([*FOUR_STEPS, f"run.batch_size={2 * per_rank}"]))
    out = tmp_path / "ranks"
    _run_two_ranks(["-m", "manyview", "train", str(two), "--out", str(out)], timeout=300)

    # rank 0 alone writes: one metrics line per logging step, one set of checkpoints
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [2, 4]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["last", "step-2", "step-4"]
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints", "config.toml", "metrics.jsonl"]

    single = tmp_path / "single"
    Trainer(load_config(one), single, progress=False).fit()
    a = load_file(out / "checkpoints/last/model.safetensors")
    b = load_file(single / "checkpoints/last/model.safetensors")
    assert a.keys() == b.keys()
    # float32: the two runs add the same terms in different orders (per-rank matmuls, the
    # gather's and DDP's all-reduces), so equal up to rounding (~1e-7 after 4 AdamW steps;
    # gather mode "none" differs by ~1e-2), not bit for bit
    for key in a:
        assert torch.allclose(a[key], b[key], rtol=1e-4, atol=1e-5), key
    _, state_a = load_checkpoint(out / "checkpoints/last")
    _, state_b = load_checkpoint(single / "checkpoints/last")
    ra, rb = state_a["recipe"], state_b["recipe"]
    assert torch.equal(ra["losses.losses.isogclr.seen"], rb["losses.losses.isogclr.seen"])
    for key in ("tau", "log_u"):  # isogclr's state: the same update as one process
        key = f"losses.losses.isogclr.{key}"
        assert torch.allclose(ra[key], rb[key], atol=1e-4), key
    assert state_a["step"] == 4 and state_a["batches_consumed"] == 4


_BUFFERS_SCRIPT = """
import torch
import torch.distributed as dist

from manyview import distributed

dist.init_process_group("gloo")
rank = dist.get_rank()
torch.manual_seed(rank)
bn = torch.nn.BatchNorm1d(3)
with torch.no_grad():
    bn.weight.fill_(rank + 1.0)
bn(torch.randn(5, 3) * (rank + 1))  # running statistics differ between the ranks
ours = torch.cat([bn.running_mean, bn.running_var])
distributed.broadcast_buffers(bn)
state = torch.cat([bn.running_mean, bn.running_var, bn.num_batches_tracked.float()[None]])
every = [torch.zeros_like(state) for _ in range(2)]
dist.all_gather(every, state)
assert torch.equal(every[0], every[1]), every  # rank 0's buffers everywhere
assert torch.equal(state[:6], ours) == (rank == 0)
assert torch.equal(bn.weight, torch.full((3,), rank + 1.0))  # parameters untouched
dist.destroy_process_group()
print("OK", rank)
"""


def test_broadcast_buffers_copies_rank0s_buffers_only():
    """GradCache under torchrun has no DDP wrapper: the trainer copies rank 0's buffers
    (BatchNorm running statistics) to every rank before each forward, as DDP does."""
    logs = _run_two_ranks(["-c", _BUFFERS_SCRIPT], timeout=120)
    assert [f"OK {rank}" in log for rank, log in enumerate(logs)] == [True, True], logs


@pytest.mark.parametrize("gradcache", [False, True], ids=["ddp", "gradcache"])
def test_diverging_embeddings_on_two_ranks_stop_every_rank(
    tmp_path: Path, two_modalities, gradcache
):
    """Every rank agrees to skip a step whose embeddings are NaN (the flag is reduced), so
    no rank waits in an all-reduce; after max_bad_steps every rank stops with one line."""
    config = tmp_path / "two.toml"
    chunk = ["run.gradcache_chunk=3"] if gradcache else []
    sets = ["run.steps=6", "run.batch_size=8", "optimizer.lr=1e30", "run.max_bad_steps=2"]
    config.write_text(two_modalities([*sets, *chunk]))
    out = tmp_path / "ranks"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MANYVIEW_")}
    env |= {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "WORLD_SIZE": "2"}
    argv = [sys.executable, "-m", "manyview", "train", str(config), "--out", str(out)]
    procs = [
        subprocess.Popen(
            argv,
            env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for r in range(2)
    ]
    try:
        logs = [p.communicate(timeout=300)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for rank, (p, log) in enumerate(zip(procs, logs, strict=True)):
        assert p.returncode == 1, f"rank {rank}:\n{log}"
        assert "Traceback" not in log, log
        assert "embeddings were not finite for 2 steps in a row" in log, log
    assert (out / "checkpoints" / "step-3").is_dir()
