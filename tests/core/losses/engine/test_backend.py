"""Backend choice (``manyview.losses.engine.backend``): the self-check that the Triton kernels
must pass before ``backend="auto"`` uses them, the record of failures, the fallback to the
PyTorch tiles, and that CPU tensors never import triton. Stand-in kernels are injected
through :class:`TritonBackend`, each test with its own (fresh checks and failures)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import torch

from manyview.losses.engine import (
    LSEProblem,
    TorchTiles,
    TritonBackend,
    tf32_enabled,
    tiled_logsumexp,
)


def _fake_kernels(shift: float, calls: dict[str, int], ignore_ids: bool = False) -> Any:
    """Stand-in kernels with the interface of ``triton_kernels``: the PyTorch tiles, with
    ``shift`` added to the forward's lse (and, with ``ignore_ids``, no exclusions: the bug of
    a kernel that drops its mask). They take tensors on any device."""
    tiles = TorchTiles((16, 16))

    def forward(a, b, scale, rid, cid):
        calls["forward"] += 1
        if ignore_ids:
            rid = cid = None
        return tiles.forward(LSEProblem(a, b, scale, rid, cid)) + shift

    def backward(a, b, scale, rid, cid, lse, grad):
        calls["backward"] += 1
        if ignore_ids:
            rid = cid = None
        return tiles.backward(LSEProblem(a, b, scale, rid, cid), lse, grad)

    return SimpleNamespace(
        takes=lambda t: True, triton_lse_forward=forward, triton_lse_backward=backward
    )


def _calls() -> dict[str, int]:
    return {"forward": 0, "backward": 0}


def test_kernels_that_pass_the_self_check_are_used() -> None:
    calls = _calls()
    backend = TritonBackend(_fake_kernels(0.0, calls))
    a = torch.randn(40, 8, requires_grad=True)
    b = torch.randn(30, 8)
    ids = (torch.arange(40) % 7, torch.arange(30) % 7)
    for _ in range(2):
        lse = tiled_logsumexp(a, b, 2.0, row_ids=ids[0], col_ids=ids[1], triton=backend)
        lse.sum().backward()
    # the check ran once (one forward and one backward), then two losses used the kernels
    assert calls == {"forward": 3, "backward": 3}
    assert list(backend.checks.values()) == [True]
    tiled_logsumexp(a, b, 2.0, triton=backend).sum().backward()  # no ids: checked anew
    assert calls == {"forward": 5, "backward": 5}
    assert backend.failures == []


def test_kernels_with_wrong_results_are_never_used() -> None:
    """A kernel that runs but computes something else (say, a GPU where a block config
    misbehaves) must not train a model: the self-check warns and the PyTorch tiles take over."""
    calls = _calls()
    backend = TritonBackend(_fake_kernels(0.5, calls))
    a, b = torch.randn(40, 8), torch.randn(30, 8)
    want = torch.logsumexp(2.0 * a @ b.T, dim=1)
    with pytest.warns(RuntimeWarning, match="self-check.*differ from the PyTorch tiles"):
        got = tiled_logsumexp(a, b, 2.0, triton=backend)
    torch.testing.assert_close(got, want)
    assert calls["forward"] == 1  # the check's call only
    assert "differ" in backend.failures[0]
    tiled_logsumexp(a, b, 2.0, triton=backend)  # no second check, no second warning
    assert calls["forward"] == 1


def test_the_self_check_catches_kernels_that_drop_the_exclusions() -> None:
    backend = TritonBackend(_fake_kernels(0.0, _calls(), ignore_ids=True))
    a, b = torch.randn(40, 8), torch.randn(30, 8)
    assert backend.agrees(torch.float32, 8, False, a.device)  # without ids they are right
    assert not backend.checks.get((torch.float32, 8, True, tf32_enabled(), "cpu"))
    ids = (torch.arange(40) % 5, torch.arange(30) % 5)
    with pytest.warns(RuntimeWarning, match="differ"):
        got = tiled_logsumexp(a, b, 2.0, row_ids=ids[0], col_ids=ids[1], triton=backend)
    want = TorchTiles((64, 64)).forward(LSEProblem(a, b, torch.full((40,), 2.0), *ids))
    torch.testing.assert_close(got, want)


def test_backend_triton_runs_the_kernels_unchecked_and_torch_never() -> None:
    calls = _calls()
    backend = TritonBackend(_fake_kernels(0.5, calls))
    a, b = torch.randn(12, 4), torch.randn(9, 4)
    got = tiled_logsumexp(a, b, 1.0, backend="triton", triton=backend)
    torch.testing.assert_close(got, torch.logsumexp(a @ b.T, dim=1) + 0.5)
    assert calls["forward"] == 1 and backend.checks == {}
    tiled_logsumexp(a, b, 1.0, backend="torch", triton=backend)
    tiled_logsumexp(a.double(), b.double(), 1.0, triton=backend)  # float64: PyTorch tiles
    assert calls["forward"] == 1 and backend.checks == {}


def test_a_failing_triton_kernel_falls_back_to_the_pytorch_tiles_once() -> None:
    """backend="auto" on CUDA wraps the kernels: a build/launch failure warns once and the
    PyTorch tiles take over, with the same result; an out-of-memory error propagates."""
    backend = TritonBackend()
    calls = {"kernel": 0, "reference": 0}

    def broken(*args):
        calls["kernel"] += 1
        raise RuntimeError("CompilationError: triton could not build the kernel\nmore lines")

    def reference(*args):
        calls["reference"] += 1
        return sum(args)

    run = backend.with_fallback(broken, reference)
    with pytest.warns(RuntimeWarning, match="Triton kernels failed.*could not build the kernel"):
        assert run(1, 2) == 3
    assert run(3, 4) == 7  # no second try, no second warning
    assert calls == {"kernel": 1, "reference": 2}
    assert "could not build" in backend.failures[0]

    def out_of_memory(*args):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    fresh = TritonBackend()
    with pytest.raises(torch.cuda.OutOfMemoryError):
        fresh.with_fallback(out_of_memory, reference)(1)
    assert fresh.failures == []


def test_cpu_never_asks_for_triton() -> None:
    class Refusing(TritonBackend):
        def load(self) -> None:
            raise AssertionError("the Triton kernels were looked up for CPU tensors")

    a, b = torch.randn(6, 4, dtype=torch.float64), torch.randn(7, 4, dtype=torch.float64)
    for dtype in (torch.float64, torch.float32):
        x, y = a.to(dtype), b.to(dtype)
        want = torch.logsumexp(2.0 * x @ y.T, dim=1)
        torch.testing.assert_close(tiled_logsumexp(x, y, 2.0, triton=Refusing()), want)
    with pytest.raises(ValueError, match="not on CUDA"):
        tiled_logsumexp(a.float(), b.float(), 2.0, backend="triton", triton=Refusing())
