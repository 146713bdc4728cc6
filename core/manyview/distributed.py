"""torch.distributed helpers: process setup under torchrun, and how contrastive losses see
the other ranks' embeddings.

Gather semantics (one named option, ``[distributed] gather``):

- ``"local_anchors"`` (default): every rank's anchors (its own rows) are contrasted against
  the candidates of *all* ranks, gathered with gradients; each rank's loss is the mean over
  its anchors, so after DDP's gradient average the update equals one process on the whole
  global batch. A loss that cannot split itself by anchors (no ``compute_local``: iSogCLR,
  SupReMix, PWE, plugin losses that only define ``compute``) computes the full global loss
  instead, which is just as exact.
- ``"full"``: every rank computes the whole global loss on the gathered batch (W times the
  loss compute; the same gradient).
- ``"none"``: each rank contrasts only its own batch (no cross-rank negatives; a different,
  smaller-batch loss).

The value a rank returns is its own anchors' mean in ``"local_anchors"`` (the ranks'
average is the global loss) and the global loss in ``"full"``.

How a loss does it (:meth:`manyview.losses.base.MultiViewLoss.forward`, where the gradient
argument is written out): it gathers its prepared embeddings with
:func:`all_gather_with_grad` and ``labels``/``index`` with :func:`all_gather_no_grad`, then
computes either its rows only (``compute_local``) or the whole global loss. Every rank must
hold the same number of instances. Losses that are not :class:`MultiViewLoss` subclasses
see only their rank's batch.

Gathering *without* gradients while computing local anchors only (open_clip's
``local_loss=True, gather_with_grad=False``) is biased — local embeddings never receive the
gradient of being another rank's negative — and is not offered.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

GATHER_MODES = ("local_anchors", "full", "none")
_mode = "local_anchors"
_global_batch = False


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


def rank() -> int:
    """This process's rank (0 when torch.distributed is not initialised)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    """The number of processes (1 when torch.distributed is not initialised)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _check_equal_sizes(x: Tensor, what: str) -> None:
    """Every rank must hold a tensor of the same shape; raise the same ValueError on all."""
    dims = 8
    if x.dim() > dims:
        raise ValueError(f"{what}: at most {dims} dimensions can be gathered, got {x.dim()}")
    shape = torch.tensor([x.dim(), *x.shape, *[0] * (dims - x.dim())], device=x.device)
    shapes = [torch.empty_like(shape) for _ in range(dist.get_world_size())]
    dist.all_gather(shapes, shape)
    if any(not torch.equal(s, shapes[0]) for s in shapes):
        listed = ", ".join(
            f"rank {r}: {tuple(s[1 : 1 + int(s[0])].tolist())}" for r, s in enumerate(shapes)
        )
        raise ValueError(
            f"{what}: every rank must hold a tensor of the same shape, the same number of "
            f"instances, to gather them ({listed}); use equal per-rank batches "
            "(data.drop_last = true)"
        )


class _AllGatherWithGrad(torch.autograd.Function):
    """Concatenate every rank's tensor along dim 0; the backward sums the gradients that
    all ranks send to each slice (a reduce-scatter) and returns this rank's slice."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:  # type: ignore[override]
        world, me = dist.get_world_size(), dist.get_rank()
        ctx.rank, ctx.n = me, x.shape[0]
        parts = [torch.empty_like(x, memory_format=torch.contiguous_format) for _ in range(world)]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:  # type: ignore[override]
        grad = grad.contiguous()
        if dist.get_backend() in ("nccl", "xccl"):
            out = grad.new_empty((ctx.n, *grad.shape[1:]))
            dist.reduce_scatter_tensor(out, grad, op=dist.ReduceOp.SUM)
            return out
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)  # gloo has no reduce-scatter
        return grad[ctx.rank * ctx.n : (ctx.rank + 1) * ctx.n]


def all_gather_with_grad(x: Tensor, *, check_sizes: bool = True) -> Tensor:
    """All ranks' ``x`` concatenated along dim 0 (rank order), differentiable.

    The backward of rank r returns, for its own rows, the *sum* over ranks of the gradients
    every rank's loss sends to those rows, so rows used as another rank's candidates get
    that gradient too. Outside torch.distributed this returns ``x``.

    ``check_sizes`` first compares the ranks' shapes (one small extra collective); pass
    ``False`` only where they are known to agree.

    Raises:
        ValueError: the ranks' tensors differ in shape (unequal per-rank batches).
    """
    if not is_distributed():
        return x
    if check_sizes:
        _check_equal_sizes(x, "all_gather_with_grad")
    return _AllGatherWithGrad.apply(x)


def all_gather_no_grad(x: Tensor, *, check_sizes: bool = True) -> Tensor:
    """All ranks' ``x`` concatenated along dim 0, without gradient (labels, indices).

    Raises:
        ValueError: the ranks' tensors differ in shape.
    """
    if not is_distributed():
        return x
    if check_sizes:
        _check_equal_sizes(x, "all_gather_no_grad")
    x = x.detach().contiguous()
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x)
    return torch.cat(parts, dim=0)


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


def shutdown() -> None:
    """Destroy the default process group if one is initialised (the end of a torchrun job)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


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


def is_global_batch() -> bool:
    """Whether the loss being computed sees the gathered global batch (see
    :func:`global_batch`): a loss that draws random numbers (SupReMix) then shares rank 0's
    draw so that every rank computes the same function."""
    return _global_batch


@contextlib.contextmanager
def global_batch() -> Iterator[None]:
    """Mark a loss computation on already-gathered embeddings: within the block the gather
    mode is ``"none"``, so a loss that calls other losses (``pwe``) does not gather twice."""
    global _mode, _global_batch
    previous = _mode, _global_batch
    _mode, _global_batch = "none", True
    try:
        yield
    finally:
        _mode, _global_batch = previous


def _collective_device() -> torch.device:
    """Where small control tensors for a collective live: the current GPU under NCCL."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def mean_across_ranks(value: float) -> float:
    """The mean of a Python number over all ranks (the value itself without a process group)."""
    if not is_distributed():
        return float(value)
    device = _collective_device()
    t = torch.tensor([float(value)], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item()) / dist.get_world_size()


def broadcast_from_rank0(module: torch.nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every rank (what DDP does when it wraps a
    module), so ranks seeded differently start from one model."""
    if not is_distributed():
        return
    with torch.no_grad():
        for t in module.parameters():
            dist.broadcast(t.data, src=0)
    broadcast_buffers(module)


def broadcast_buffers(module: torch.nn.Module) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics, loss state) to every rank, in
    place: what DDP (``broadcast_buffers=True``) does before each forward. Nothing happens
    without a process group or without buffers."""
    if not is_distributed():
        return
    with torch.no_grad():
        for t in module.buffers():
            dist.broadcast(t.data, src=0)


def average_gradients(params: list[torch.Tensor]) -> None:
    """Replace every parameter's ``.grad`` by its mean over the ranks (what DDP's all-reduce
    does), in one flattened all-reduce; a missing ``.grad`` counts as zeros. Nothing happens
    without a process group."""
    if not is_distributed() or not params:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    start = 0
    for p, g in zip(params, grads, strict=True):
        size = g.numel()
        p.grad = flat[start : start + size].view_as(p).clone()
        start += size


def all_ranks_true(flag: bool) -> bool:
    """Whether ``flag`` holds on every rank (so that all ranks skip a step together)."""
    if not is_distributed():
        return bool(flag)
    device = _collective_device()
    t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item())
