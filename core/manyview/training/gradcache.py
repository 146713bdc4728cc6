r"""GradCache: the exact gradient of a full-batch contrastive loss with the encoder
activation memory of one chunk (Gao, Zhang, Han, Callan 2021, "Scaling Deep Contrastive
Learning Batch Size under Memory Limited Setup", arXiv 2101.06983).

A contrastive loss couples every instance of the batch, so the batch cannot simply be split
into gradient-accumulation steps. It only couples them through the representations, though:
with :math:`z = f_\theta(x)` of shape (N, D) per view,

.. math::
    \frac{\partial L}{\partial\theta}
    = \sum_{\text{chunks } c} \Big(\frac{\partial L}{\partial z_c}\Big)^{\!\top}
      \frac{\partial z_c}{\partial\theta}.

:class:`GradCache` therefore (1) encodes every chunk without grad, (2) computes the loss on
the detached (N, D) representations and backpropagates it to them, caching
:math:`\partial L/\partial z` (the loss's own parameters, e.g. CLIP's logit scale, get their
gradient here), and (3) re-encodes every chunk with grad, replaying the random-number state
saved before that chunk in (1), and backpropagates :math:`\langle z_c, \partial
L/\partial z_c\rangle`. The price is one extra encoder forward; the peak activation memory is
one chunk's, plus the N x D representations and the loss.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _NormBase

from manyview import distributed

__all__ = ["GradCache", "NonFiniteLossError"]


class NonFiniteLossError(ValueError):
    """The loss, or the representations it would be computed from, was NaN or infinite (on
    some rank): nothing was backpropagated. ``embeddings`` is true when the representations
    were (the loss was then not computed)."""

    def __init__(self, message: str, *, embeddings: bool = False) -> None:
        super().__init__(message)
        self.embeddings = embeddings


Encoder = Callable[[Any], Tensor]
BufferMode = Literal["all", "norm", "none"]


# --------------------------------------------------------------------------- batches


def batch_size(batch: Any, where: str) -> int:
    """The number of instances N of one view's batch: a tensor (its dim 0), a sequence of N
    items (list, tuple, array) or a mapping whose values are all such batches."""
    if isinstance(batch, Tensor):
        if batch.dim() == 0:
            raise ValueError(f"GradCache: {where} is a 0-dim tensor; it needs a batch dimension")
        return int(batch.shape[0])
    if isinstance(batch, Mapping):
        if not batch:
            raise ValueError(f"GradCache: {where} is an empty mapping")
        sizes = {key: batch_size(value, f"{where}[{key!r}]") for key, value in batch.items()}
        if len(set(sizes.values())) > 1:
            raise ValueError(
                f"GradCache: the values of {where} have different batch sizes {sizes}; "
                "every value must hold the same N instances"
            )
        return next(iter(sizes.values()))
    if isinstance(batch, str | bytes) or not hasattr(batch, "__len__"):
        raise ValueError(
            f"GradCache: {where} is a {type(batch).__name__}; each view's input must be a "
            "tensor with a batch dimension, a list of N items or a dict of such"
        )
    return len(batch)


def take(batch: Any, start: int, stop: int) -> Any:
    """Instances ``start .. stop-1`` of a batch (see :func:`batch_size`)."""
    if isinstance(batch, Mapping):
        return {key: take(value, start, stop) for key, value in batch.items()}
    return batch[start:stop]


def _cuda_indices(obj: Any, found: set[int]) -> None:
    if isinstance(obj, Tensor):
        if obj.is_cuda:
            found.add(obj.device.index if obj.device.index is not None else 0)
    elif isinstance(obj, Mapping):
        for value in obj.values():
            _cuda_indices(value, found)
    elif isinstance(obj, list | tuple):
        for value in obj:
            if isinstance(value, Tensor | Mapping | list | tuple):
                _cuda_indices(value, found)


# --------------------------------------------------------------------------- RNG replay


@dataclass
class RngState:
    """The state of the CPU generator, of the given CUDA devices' default generators and
    of any extra ``torch.Generator`` objects, captured at one moment."""

    cpu: Tensor
    cuda: list[tuple[int, Tensor]]
    extra: list[Tensor]

    @classmethod
    def capture(cls, devices: Sequence[int], generators: Sequence[torch.Generator]) -> RngState:
        return cls(
            cpu=torch.get_rng_state(),
            cuda=[(d, torch.cuda.get_rng_state(d)) for d in devices],
            extra=[g.get_state() for g in generators],
        )

    def restore(self, generators: Sequence[torch.Generator]) -> None:
        torch.set_rng_state(self.cpu)
        for device, state in self.cuda:
            torch.cuda.set_rng_state(state, device)
        for generator, state in zip(generators, self.extra, strict=True):
            generator.set_state(state)


@contextlib.contextmanager
def forked_rng(devices: Sequence[int], generators: Sequence[torch.Generator]) -> Iterator[None]:
    """Run the block on forked generators: whatever it draws or sets, the CPU generator, the
    CUDA ``devices``' generators and ``generators`` are back in their entry state after it."""
    saved = [g.get_state() for g in generators]
    try:
        with torch.random.fork_rng(devices=list(devices), device_type="cuda"):
            yield
    finally:
        for generator, state in zip(generators, saved, strict=True):
            generator.set_state(state)


# --------------------------------------------------------------------------- buffers


def snapshot_buffers(
    modules: Sequence[nn.Module], mode: BufferMode
) -> list[tuple[nn.Module, str, Tensor]]:
    """Copies of the buffers that :meth:`GradCache.step` resets after its no-grad pass:
    every buffer of ``modules`` (``"all"``), the running statistics of their BatchNorm /
    InstanceNorm layers (``"norm"``) or none (``"none"``)."""
    if mode == "none":
        return []
    saved: list[tuple[nn.Module, str, Tensor]] = []
    seen: set[int] = set()
    for root in modules:
        for module in root.modules():
            if id(module) in seen:
                continue
            seen.add(id(module))
            if mode == "norm" and not (
                isinstance(module, _NormBase) and module.track_running_stats
            ):
                continue
            for name, buffer in module._buffers.items():
                if buffer is not None:
                    saved.append((module, name, buffer.detach().clone()))
    return saved


@torch.no_grad()
def restore_buffers(saved: list[tuple[nn.Module, str, Tensor]]) -> None:
    """Write the copies of :func:`snapshot_buffers` back (in place where the buffer is still
    a tensor of the same shape and dtype, so references to it stay valid)."""
    for module, name, value in saved:
        current = module._buffers.get(name)
        if (
            isinstance(current, Tensor)
            and current.shape == value.shape
            and current.dtype == value.dtype
        ):
            current.copy_(value)
        else:
            module._buffers[name] = value


# --------------------------------------------------------------------------- GradCache


class GradCache:
    r"""Exact gradients of any loss over M views' representations, encoding the batch in
    chunks of ``chunk_size`` instances (GradCache: Gao, Zhang, Han, Callan 2021, arXiv
    2101.06983; see the module docstring for the three passes).

    :meth:`step` takes one input batch per view, encodes view m with ``encoders[m]`` (one
    encoder shared by every view, or one per view; the same module may serve several views)
    into ``(N, D)`` representations, calls ``loss_fn(views, **loss_kwargs)`` with ``views``
    the ``(N, M, D)`` stack (``stack=True``, manyview's loss convention) or the list of M
    ``(N, D_m)`` tensors (``stack=False``), and leaves on every parameter the gradient of
    that loss, accumulated into ``.grad`` exactly as ``loss.backward()`` would. It returns
    the detached loss.

    **Exactness.** The gradients equal those of the direct computation that encodes the same
    chunks with grad, view after view and chunk after chunk (the order of the no-grad pass),
    concatenates them and backpropagates the loss: bit-for-bit up to the order of floating-
    point sums (tested to float64 precision). Randomness drawn inside the encoders from
    torch's default CPU generator, the default generators of the CUDA devices in use (those
    of the encoders' parameters and buffers and of the inputs, and the current device) or the
    ``generators`` given here (dropout, stochastic depth, random views) is replayed
    identically; after :meth:`step` those generators are where the no-grad pass left them,
    i.e. where the direct computation would leave them. Without randomness and batch
    statistics the result equals the plain full-batch computation; with ``chunk_size >= N``
    it always does.

    **BatchNorm.** In training mode a BatchNorm layer normalises each chunk by that chunk's
    statistics, so chunked BN is *not* full-batch BN, GradCache or not (the exact statement
    above is against the chunked computation). Running statistics would be updated twice
    per chunk (once by each pass); with ``restore_buffers="all"`` (default) or ``"norm"``
    the buffers are reset after the no-grad pass, so they are updated exactly once per chunk
    by the pass that counts, as by the direct chunked computation. ``"all"`` resets every
    buffer of the encoders (nn.Module encoders only), which also makes any other stateful
    module (e.g. spectral-norm power iterations) replay exactly; ``"norm"`` copies only the
    BatchNorm/InstanceNorm running statistics (for encoders with large constant buffers);
    ``"none"`` keeps the no-grad pass's updates.

    **DDP.** For each encoder that has ``no_sync`` (DistributedDataParallel), every chunk's
    forward and backward but its last runs under ``no_sync()``, so its gradients are
    all-reduced once, with the last chunk's backward. Wrap the encoder modules themselves in
    DDP (a plain function calling ``ddp.module`` bypasses DDP). Gradients of the loss's own
    parameters are not averaged by the encoders' DDP: all-reduce them yourself, or keep them
    in a DDP module of their own. The non-finite check agrees across ranks.

    Args:
        encoders: one callable for every view, or a sequence of M callables (view m uses
            ``encoders[m]``). Each takes one chunk of its view's input and returns a
            ``(chunk, D)`` floating-point tensor. A dict input is passed as one argument.
            Wrap a function in an ``nn.Module`` to let GradCache see its parameters,
            buffers and ``no_sync``.
        loss_fn: called as ``loss_fn(views, **loss_kwargs)``; returns a scalar tensor.
        chunk_size: instances per encoder call (the last chunk may be smaller).
        stack: pass the loss one ``(N, M, D)`` tensor (default), or a list of M tensors.
        restore_buffers: ``"all"`` (default), ``"norm"`` or ``"none"``, see above.
        generators: extra ``torch.Generator`` objects the encoders draw from, to replay.
        scaler: a ``torch.amp.GradScaler`` for float16 training: the loss is scaled before
            the backward of pass 2, so every gradient is scaled as with
            ``scaler.scale(loss).backward()``; then call ``scaler.step(optimizer)``.
        check_replay: compare each chunk's re-forward with its no-grad forward
            (``torch.testing.assert_close`` tolerances) and raise ``RuntimeError`` if they
            differ: a debugging aid for encoders with randomness or state GradCache does
            not replay.

    Example::

        gc = GradCache(encoder, manyview.create("loss", "infonce"), chunk_size=64)
        optimizer.zero_grad()
        loss = gc.step([view_1, view_2])  # two (4096, ...) batches, 64 rows at a time
        optimizer.step()
    """

    def __init__(
        self,
        encoders: Sequence[Encoder] | nn.ModuleList | Encoder,
        loss_fn: Callable[..., Tensor],
        *,
        chunk_size: int,
        stack: bool = True,
        restore_buffers: BufferMode = "all",
        generators: Sequence[torch.Generator] = (),
        scaler: Any | None = None,
        check_replay: bool = False,
    ) -> None:
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(
                f"GradCache: chunk_size must be a positive integer (instances per encoder "
                f"call), got {chunk_size!r}"
            )
        if restore_buffers not in ("all", "norm", "none"):
            raise ValueError(
                f"GradCache: restore_buffers must be 'all', 'norm' or 'none', "
                f"got {restore_buffers!r}"
            )
        if isinstance(encoders, nn.ModuleList | list | tuple):
            encoder_list: list[Encoder] = list(encoders)
            if not encoder_list:
                raise ValueError("GradCache: encoders is empty; give one encoder or one per view")
            for k, encoder in enumerate(encoder_list):
                if not callable(encoder):
                    raise ValueError(f"GradCache: encoders[{k}] is not callable")
            self.encoders = encoder_list
        elif callable(encoders):
            self.encoders = [encoders]
        else:
            raise ValueError(
                "GradCache: encoders must be a callable or a sequence of callables, "
                f"got {type(encoders).__name__}"
            )
        if not callable(loss_fn):
            raise ValueError("GradCache: loss_fn must be callable")
        self.loss_fn = loss_fn
        self.chunk_size = chunk_size
        self.stack = stack
        self.restore_buffers = restore_buffers
        self.generators = list(generators)
        self.scaler = scaler
        self.check_replay = check_replay

    # ------------------------------------------------------------------ helpers

    def _per_view(self, m: int) -> list[Encoder]:
        if len(self.encoders) == 1:
            return self.encoders * m
        if len(self.encoders) != m:
            raise ValueError(
                f"GradCache: got {len(self.encoders)} encoders for {m} views; give one "
                f"encoder (shared by every view) or exactly {m} (one per view)"
            )
        return list(self.encoders)

    def _modules(self, encoders: Sequence[Encoder]) -> list[nn.Module]:
        unique: dict[int, nn.Module] = {}
        for encoder in encoders:
            if isinstance(encoder, nn.Module):
                unique.setdefault(id(encoder), encoder)
        return list(unique.values())

    @staticmethod
    def _cuda_devices(modules: Sequence[nn.Module], inputs: Sequence[Any]) -> list[int]:
        found: set[int] = set()
        for module in modules:
            for tensor in (*module.parameters(), *module.buffers()):
                _cuda_indices(tensor, found)
        _cuda_indices(list(inputs), found)
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            found.add(torch.cuda.current_device())
        return sorted(found)

    @staticmethod
    def _check_output(out: Any, view: int, start: int, stop: int) -> Tensor:
        rows = stop - start
        if not isinstance(out, Tensor) or out.dim() != 2 or out.shape[0] != rows:
            got = (
                f"a tensor of shape {tuple(out.shape)}"
                if isinstance(out, Tensor)
                else f"a {type(out).__name__}"
            )
            raise ValueError(
                f"GradCache: the encoder of view {view} returned {got} for rows "
                f"{start}:{stop}; it must return one (chunk, D) tensor = ({rows}, D) "
                "(pool or select the representation inside the encoder)"
            )
        if not out.is_floating_point():
            raise ValueError(
                f"GradCache: the encoder of view {view} returned {out.dtype}; representations "
                "must be floating point"
            )
        return out

    def _loss_input(self, reps: list[Tensor]) -> tuple[Any, list[Tensor]]:
        """The loss's input, built from fresh leaves, and the leaves."""
        if not self.stack:
            leaves = [r.requires_grad_() for r in reps]
            return leaves, leaves
        layouts = {(tuple(r.shape), r.dtype, r.device) for r in reps}
        if len(layouts) > 1:
            listed = ", ".join(f"{tuple(r.shape)} {r.dtype} {r.device}" for r in reps)
            raise ValueError(
                f"GradCache: cannot stack the views' representations ({listed}) into "
                "(N, M, D); use stack=False to pass the loss a list of M tensors"
            )
        leaf = torch.stack(reps, dim=1).requires_grad_()
        return leaf, [leaf]

    # ------------------------------------------------------------------ step

    def step(self, inputs: Sequence[Any], **loss_kwargs: Any) -> Tensor:
        """One GradCache step on M views' batches; returns the detached loss (0-dim).

        Args:
            inputs: one batch per view (M of them), each a tensor whose dim 0 holds the N
                instances, a list of N items (e.g. strings) or a dict of such.
            **loss_kwargs: passed to ``loss_fn`` (e.g. ``labels=`` (N,)).

        Raises:
            ValueError: bad inputs or encoder outputs (before any gradient is touched), a
                non-scalar loss, or a non-finite loss (nothing is backpropagated then).
        """
        if isinstance(inputs, Tensor | Mapping | str | bytes) or not isinstance(inputs, Sequence):
            raise ValueError(
                "GradCache.step: inputs must be a list with one batch per view, got "
                f"{type(inputs).__name__} (for one view, pass [batch])"
            )
        m = len(inputs)
        if m == 0:
            raise ValueError("GradCache.step: inputs is empty; give one batch per view")
        encoders = self._per_view(m)
        sizes = [batch_size(x, f"inputs[{v}]") for v, x in enumerate(inputs)]
        if len(set(sizes)) > 1:
            raise ValueError(
                f"GradCache.step: the views have different batch sizes {sizes}; every view "
                "must hold the same N instances, in the same order"
            )
        n = sizes[0]
        if n == 0:
            raise ValueError("GradCache.step: the batch is empty (N = 0)")
        plan = [
            (v, start, min(start + self.chunk_size, n))
            for v in range(m)
            for start in range(0, n, self.chunk_size)
        ]
        modules = self._modules(encoders)
        devices = self._cuda_devices(modules, inputs)

        # 1. every chunk without grad, remembering the RNG state right before it
        states: list[RngState] = []
        chunks: list[list[Tensor]] = [[] for _ in range(m)]
        saved = snapshot_buffers(modules, self.restore_buffers)
        try:
            with torch.no_grad():
                for v, start, stop in plan:
                    states.append(RngState.capture(devices, self.generators))
                    out = encoders[v](take(inputs[v], start, stop))
                    chunks[v].append(self._check_output(out, v, start, stop).detach())
        finally:
            restore_buffers(saved)  # the with-grad pass starts from the same state
            del saved
        reps = [torch.cat(c) if len(c) > 1 else c[0] for c in chunks]
        del chunks
        # a diverging encoder: stop before the loss sees NaN (every rank takes part)
        finite = all(bool(torch.isfinite(r).all()) for r in reps)
        if not distributed.all_ranks_true(finite):
            where = "here" if not finite else "on another rank"
            raise NonFiniteLossError(
                f"GradCache: the encoders' representations are not finite ({where}); nothing "
                "was backpropagated; skip this optimizer step (every rank does) and check the "
                "inputs or lower the learning rate",
                embeddings=True,
            )

        # 2. the loss on the detached representations; backward fills the cache
        with torch.enable_grad():
            views, leaves = self._loss_input(reps)
            loss = self.loss_fn(views, **loss_kwargs)
            if not isinstance(loss, Tensor) or loss.numel() != 1:
                got = (
                    f"shape {tuple(loss.shape)}"
                    if isinstance(loss, Tensor)
                    else type(loss).__name__
                )
                raise ValueError(
                    f"GradCache: the loss must return a scalar tensor, got {got} "
                    "(reduce it, e.g. with .mean())"
                )
            finite = bool(torch.isfinite(loss.detach()).all())
            if not distributed.all_ranks_true(finite):
                where = (
                    f"loss = {loss.detach().reshape(()).item()}"
                    if not finite
                    else "on another rank"
                )
                raise NonFiniteLossError(
                    f"GradCache: non-finite loss; nothing was backpropagated ({where}); "
                    "skip this optimizer step (every rank does) and check the inputs, the "
                    "learning rate or the temperature"
                )
            if not loss.requires_grad:
                raise ValueError(
                    "GradCache: the loss does not depend on the representations (its value "
                    "does not require grad)"
                )
            (self.scaler.scale(loss) if self.scaler is not None else loss).backward()
        if self.stack:
            cache = leaves[0].grad
            grads = [
                cache[:, v] if cache is not None else torch.zeros_like(reps[v]) for v in range(m)
            ]
        else:
            grads = [
                leaf.grad if leaf.grad is not None else torch.zeros_like(leaf) for leaf in leaves
            ]
        del views, leaves

        # 3. every chunk again with grad and the same RNG state; backward <rep, cached grad>
        last_use: dict[int, int] = {}
        for i, (v, _, _) in enumerate(plan):
            if hasattr(encoders[v], "no_sync"):
                last_use[id(encoders[v])] = i
        with forked_rng(devices, self.generators), torch.enable_grad():
            for i, (v, start, stop) in enumerate(plan):
                states[i].restore(self.generators)
                encoder = encoders[v]
                skip_sync = id(encoder) in last_use and last_use[id(encoder)] != i
                no_sync = getattr(encoder, "no_sync", None)
                sync = no_sync() if skip_sync and no_sync else contextlib.nullcontext()
                with sync:
                    out = self._check_output(encoder(take(inputs[v], start, stop)), v, start, stop)
                    grad = grads[v][start:stop]
                    if out.shape != grad.shape:
                        raise ValueError(
                            f"GradCache: the encoder of view {v} returned {tuple(out.shape)} "
                            f"for rows {start}:{stop} on the re-forward, "
                            f"{tuple(grad.shape)} before"
                        )
                    if self.check_replay:
                        self._compare(out.detach(), reps[v][start:stop], v, start, stop)
                    if out.requires_grad:
                        out.backward(grad.to(out.dtype))
        return loss.detach().reshape(())

    @staticmethod
    def _compare(new: Tensor, old: Tensor, view: int, start: int, stop: int) -> None:
        try:
            torch.testing.assert_close(new, old)
        except AssertionError:
            diff = (new.double() - old.double()).abs().max().item()
            raise RuntimeError(
                f"GradCache: the re-forward of view {view}, rows {start}:{stop}, differs from "
                f"its no-grad forward (max abs difference {diff:.3g}): the encoder draws "
                "random numbers from a generator GradCache does not replay (pass it in "
                "generators=) or keeps state that restore_buffers does not reset"
            ) from None
