"""torch.distributed helpers: process setup under torchrun, and how contrastive losses see
the other ranks' embeddings.

Gather semantics (one named option, ``[distributed] gather``):

- ``"local_anchors"`` (default): every rank's anchors (its own rows) are contrasted against
  the candidates of *all* ranks, gathered with gradients; each rank's loss is the mean over
  its anchors, so after DDP's gradient average the update equals one process on the whole
  global batch.
- ``"full"``: every rank computes the whole global loss on the gathered batch (W times the
  compute; the same gradient).
- ``"none"``: each rank contrasts only its own batch (no cross-rank negatives).

Gathering *without* gradients while computing local anchors only (open_clip's
``local_loss=True, gather_with_grad=False``) is biased — local embeddings never receive the
gradient of being another rank's negative — and is not offered.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

GATHER_MODES = ("local_anchors", "full", "none")
_mode = "local_anchors"


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def init_from_env(device: str = "cpu", backend: str = "auto") -> Context:
    """Join the process group when launched by torchrun (``WORLD_SIZE`` > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Context(device=torch.device(device))
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device.startswith("cuda")
    if backend == "auto":
        backend = "nccl" if use_cuda else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    dev = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    return Context(rank, world, local_rank, dev)


def get_gather_mode() -> str:
    return _mode


@contextlib.contextmanager
def gather_mode(mode: str) -> Iterator[None]:
    """Set how losses gather across ranks for the duration of the block."""
    global _mode
    if mode not in GATHER_MODES:
        raise ValueError(f"gather mode must be one of {GATHER_MODES}, got {mode!r}")
    previous, _mode = _mode, mode
    try:
        yield
    finally:
        _mode = previous
