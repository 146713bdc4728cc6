"""What the engine reads from the process: torch's float32 matmul mode on CUDA, which the
Triton kernels follow, and whether Triton interprets kernels on the CPU. Neither imports
triton."""

from __future__ import annotations

import os

import torch


def tf32_enabled() -> bool:
    """torch's float32 matmul mode on CUDA: ``torch.backends.cuda.matmul.allow_tf32``, read so
    that it also works after the newer ``fp32_precision`` API was used (then reading
    ``allow_tf32`` raises). The Triton kernels follow it."""
    matmul = torch.backends.cuda.matmul
    mode = getattr(matmul, "fp32_precision", "none")
    if mode in ("tf32", "ieee"):
        return mode == "tf32"
    try:
        return bool(matmul.allow_tf32)
    except RuntimeError:  # the legacy and the new precision APIs mixed
        return False


def triton_interprets() -> bool:
    """Whether ``TRITON_INTERPRET`` asks triton to run kernels in its CPU interpreter (read
    from the environment, without importing triton)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
