"""Which implementation solves a tiled row LSE: the PyTorch tiles, or the fused Triton kernels
(:mod:`manyview.losses.engine.triton_kernels`, imported only for tensors they can take).

A :class:`TritonBackend` holds what this process learnt about the kernels: ``checks``, the
outcome of the self-check per configuration, and ``failures``, why they failed. With
``backend="auto"`` the kernels are used only after they agree with the PyTorch tiles in
float64 on a small problem of the same configuration, and a kernel that fails to build or
launch hands over to the PyTorch tiles, warning once. The losses share one instance
(:func:`default_triton_backend`); tests and callers may pass their own.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from manyview.losses.engine.autograd import LSEOps
from manyview.losses.engine.inputs import LSEProblem
from manyview.losses.engine.runtime import tf32_enabled, triton_interprets
from manyview.losses.engine.tiles import TorchTiles

BACKENDS = ("auto", "torch", "triton")

CHECK_TOLERANCE = 1e-2
"""Relative gap to the float64 PyTorch tiles beyond which the self-check rejects the kernels:
above tf32 and half-precision rounding, below a kernel that drops its exclusions."""


def _relative_gap(got: Tensor, want: Tensor) -> float:
    """‖got − want‖ / ‖want‖ in float64 (inf when ``got`` has a NaN or inf)."""
    got, want = got.double(), want.double()
    if not torch.isfinite(got).all():
        return float("inf")
    return float((got - want).norm() / want.norm().clamp_min(1e-30))


def kernel_ops(kernels: Any) -> LSEOps:
    """The :class:`LSEOps` of a kernel module (``triton_lse_forward``, ``triton_lse_backward``),
    looked up at each call."""

    def forward(p: LSEProblem) -> Tensor:
        return kernels.triton_lse_forward(p.a, p.b, p.scale_vec, p.row_ids, p.col_ids)

    def backward(p: LSEProblem, lse: Tensor, grad: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return kernels.triton_lse_backward(p.a, p.b, p.scale_vec, p.row_ids, p.col_ids, lse, grad)

    return LSEOps(forward, backward)


def torch_ops(tile: tuple[int, int]) -> LSEOps:
    """The :class:`LSEOps` of the PyTorch tiles of this size."""
    tiles = TorchTiles(tile)
    return LSEOps(tiles.forward, tiles.backward)


class TritonBackend:
    """The Triton kernels and this process's record of them.

    Args:
        kernels: an object with the interface of
            :mod:`manyview.losses.engine.triton_kernels` (``takes(t)``,
            ``triton_lse_forward``, ``triton_lse_backward``); default: that module, imported
            by :meth:`load` the first time a tensor the kernels can take comes by.

    Attributes:
        checks: the self-check's outcome per (dtype, D, ids, tf32 mode, device).
        failures: why the kernels failed (then ``backend="auto"`` uses the PyTorch tiles).
    """

    def __init__(self, kernels: Any | None = None) -> None:
        self._kernels = kernels
        self._loaded = kernels is not None
        self.checks: dict[tuple[Any, ...], bool] = {}
        self.failures: list[str] = []

    def load(self) -> Any | None:
        """:mod:`manyview.losses.engine.triton_kernels` if it imports and reports
        ``available()``, else None."""
        try:
            from manyview.losses.engine import triton_kernels
        except ImportError:
            return None
        return triton_kernels if triton_kernels.available() else None

    @property
    def kernels(self) -> Any | None:
        """The kernels (loaded on first use), or None where they are not available."""
        if not self._loaded:
            self._kernels, self._loaded = self.load(), True
        return self._kernels

    def kernels_for(self, t: Tensor) -> Any | None:
        """The kernels if they run on ``t``'s device (CUDA, or the CPU while triton
        interprets kernels, how the tests run them without a GPU), else None. Before the
        kernels are loaded, a tensor elsewhere never imports triton."""
        if not self._loaded and not (t.is_cuda or triton_interprets()):
            return None
        kernels = self.kernels
        return kernels if kernels is not None and kernels.takes(t) else None

    def ops(self, a: Tensor, backend: str, ids: bool, tile: tuple[int, int]) -> LSEOps:
        """The implementation that solves a problem with rows like ``a`` (``ids``: with
        exclusions) under ``backend``: ``"torch"``, the PyTorch tiles; ``"triton"``, the
        kernels as they are (a ValueError where they cannot run); ``"auto"``, the kernels
        where they run, take the dtype (float32 and half precision, not float64) and passed
        their self-check, falling back to the PyTorch tiles, else the PyTorch tiles."""
        reference = torch_ops(tile)
        wide = a.dtype == torch.float64
        if backend == "torch" or (backend == "auto" and wide):
            return reference
        kernels = self.kernels_for(a)
        if backend == "triton":
            if kernels is None or wide:
                why = (
                    "the inputs are not on CUDA"
                    if kernels is None and not (a.is_cuda or triton_interprets())
                    else "the kernels take float32, not float64"
                    if wide
                    else "it is not available"
                )
                raise ValueError(
                    f"tiled_logsumexp: backend='triton' but {why} (the Triton kernels need "
                    "CUDA and triton); use backend='torch'"
                )
            return kernel_ops(kernels)
        if kernels is None or self.failures:  # "auto": never a wrong or failed kernel
            return reference
        dtype = a.dtype if a.dtype == torch.float32 else torch.float32  # half: in float32
        if not self.agrees(dtype, a.shape[1], ids, a.device):
            return reference
        fast = kernel_ops(kernels)
        return LSEOps(
            self.with_fallback(fast.forward, reference.forward),
            self.with_fallback(fast.backward, reference.backward),
        )

    def _fail(self, problem: str, what: str, advice: str, stacklevel: int) -> None:
        """Record ``problem`` and warn about it once: the PyTorch tiles from now on."""
        self.failures.append(problem[:500])
        warnings.warn(
            f"manyview tiled engine: the Triton kernels {what} ({problem.splitlines()[0]}); "
            f"using the PyTorch tiles from now on ({advice})",
            RuntimeWarning,
            stacklevel=stacklevel + 1,
        )

    def with_fallback(
        self, kernel: Callable[..., Any], reference: Callable[..., Any]
    ) -> Callable[..., Any]:
        """``kernel``, or ``reference`` (same arguments and results) from the first time a
        kernel raises anything but an out-of-memory error: a Triton build or launch failure
        is warned about once (and kept in :attr:`failures`) and training goes on with the
        PyTorch tiles."""

        def run(*args: Any) -> Any:
            if not self.failures:
                try:
                    return kernel(*args)
                except torch.cuda.OutOfMemoryError:
                    raise
                except Exception as exc:  # any kernel failure falls back
                    problem = f"{type(exc).__name__}: {exc}"
                    self._fail(
                        problem, "failed", "pass backend='triton' to see the error instead", 2
                    )
            return reference(*args)

        return run

    def agrees(self, dtype: torch.dtype, dim: int, ids: bool, device: Any) -> bool:
        """Whether the kernels give the lse and the gradients of the PyTorch tiles (in
        float64) on a small random problem of this dtype, feature size, exclusion mode and
        device: checked once per (dtype, D, ids, tf32 mode, device), before ``backend="auto"``
        first trusts them with a loss. A mismatch beyond :data:`CHECK_TOLERANCE` or a failure
        is recorded in :attr:`failures` and warned about once, and the PyTorch tiles are used
        from then on: a kernel that is wrong on some GPU must never train a model silently.
        Out-of-memory errors propagate."""
        key = (dtype, dim, ids, tf32_enabled(), str(device))
        if key not in self.checks:
            problem = self._check(dtype, dim, ids, device)
            self.checks[key] = not problem
            if problem and not self.failures:
                self._fail(
                    problem, "failed a self-check", "pass backend='triton' to use them anyway", 4
                )
        return self.checks[key]

    def _check(self, dtype: torch.dtype, dim: int, ids: bool, device: Any) -> str:
        """What is wrong with the kernels on the self-check's problem ('' when nothing)."""
        gen = torch.Generator().manual_seed(0)
        r, c = 203, 171  # ragged against every block size

        def unit(n: int) -> Tensor:
            x = torch.randn(n, dim, generator=gen, dtype=torch.float64)
            return (x / x.norm(dim=1, keepdim=True)).to(device)

        a64, b64 = unit(r), unit(c)
        # moderate scales keep tf32's rounding (~1e-3 here) far below the tolerance, and ids
        # of 5 classes leave out a fifth of each row: a kernel ignoring them is off by ~5e-2
        scale64 = (1.0 + 2.0 * torch.rand(r, generator=gen, dtype=torch.float64)).to(device)
        grad64 = torch.randn(r, generator=gen, dtype=torch.float64).to(device)
        rid = cid = None
        if ids:
            rid = torch.randint(0, 5, (r,), generator=gen).to(device)
            cid = torch.randint(0, 5, (c,), generator=gen).to(device)
        reference = TorchTiles((64, 64))
        kernels = kernel_ops(self.kernels)
        with torch.no_grad(), torch.autocast(torch.device(device).type, enabled=False):
            p64 = LSEProblem(a64, b64, scale64, rid, cid)
            want = reference.forward(p64)
            want_grads = reference.backward(p64, want, grad64)
            try:
                p = LSEProblem(a64.to(dtype), b64.to(dtype), scale64.float(), rid, cid)
                got = kernels.forward(p)
                got_grads = kernels.backward(p, got, grad64.float())
            except torch.cuda.OutOfMemoryError:
                raise
            except Exception as exc:  # a build or launch failure: as with_fallback reports it
                return f"{type(exc).__name__}: {exc}"
        gaps = [_relative_gap(got, want)]
        gaps += [_relative_gap(x, y) for x, y in zip(got_grads, want_grads, strict=True)]
        if max(gaps) < CHECK_TOLERANCE:
            return ""
        return (
            f"their results differ from the PyTorch tiles' (relative {max(gaps):.1e} for "
            f"{dtype}, D = {dim}{', with ids' if ids else ''})"
        )


_PROCESS = TritonBackend()


def default_triton_backend() -> TritonBackend:
    """The :class:`TritonBackend` the losses share in this process (its checks and failures
    hold for every loss that does not bring its own)."""
    return _PROCESS
