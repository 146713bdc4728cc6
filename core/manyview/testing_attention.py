"""Test helpers for attention backends: a CPU stand-in for ``xformers.ops``.

Plugin authors whose encoders take ``attention="xformers"`` can exercise that path on a
machine without xformers or CUDA::

    from manyview.testing import fake_xformers

    def test_my_encoder_xformers(monkeypatch):
        ops = fake_xformers(monkeypatch)
        encoder = MyEncoder(attention="xformers")
        ...
        assert ops.calls  # the backend was used
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["fake_xformers", "reference_xformers_ops"]


def reference_xformers_ops(device_types: tuple[str, ...] = ("cpu",)) -> SimpleNamespace:
    """A stand-in for ``xformers.ops``: the same layout ``(B, M, H, K)``, bias types and
    bias-alignment checks as xformers, computed with plain torch."""

    class LowerTriangularMask:
        def materialize(self, shape: tuple[int, ...], dtype: torch.dtype, device: Any) -> Tensor:
            return torch.full(shape, -math.inf, dtype=dtype, device=device).triu(1)

    calls: list[Any] = []

    def memory_efficient_attention(
        q: Tensor, k: Tensor, v: Tensor, attn_bias: Any = None, p: float = 0.0
    ) -> Tensor:
        assert q.dim() == k.dim() == v.dim() == 4 and q.shape[2] == k.shape[2]
        assert q.device.type in device_types
        b, mq, h, kd = q.shape
        mk = k.shape[1]
        calls.append(attn_bias)
        if isinstance(attn_bias, Tensor):
            assert attn_bias.dtype == q.dtype, "xformers: the bias must have the query's dtype"
            assert attn_bias.shape == (b, h, mq, mk), attn_bias.shape
            align = 128 // torch.finfo(attn_bias.dtype).bits
            assert attn_bias.stride(-1) == 1
            for d in range(3):  # as xformers' _check_bias_alignment
                assert attn_bias.stride(d) % align == 0, attn_bias.stride()
            bias = attn_bias
        elif attn_bias is not None:
            bias = attn_bias.materialize((mq, mk), q.dtype, q.device)
        else:
            bias = 0.0
        scores = q.transpose(1, 2) @ k.permute(0, 2, 3, 1) / math.sqrt(kd) + bias
        weights = F.dropout(scores.softmax(-1), p)
        return (weights @ v.transpose(1, 2)).transpose(1, 2)

    return SimpleNamespace(
        memory_efficient_attention=memory_efficient_attention,
        LowerTriangularMask=LowerTriangularMask,
        calls=calls,
    )


def fake_xformers(monkeypatch: Any, device_types: tuple[str, ...] = ("cpu",)) -> SimpleNamespace:
    """Make :mod:`manyview.attention` use :func:`reference_xformers_ops` as if xformers and
    CUDA were there (``monkeypatch``: pytest's fixture); return the ops (``.calls`` records
    each call's bias)."""
    import manyview.attention as attn_mod

    ops = reference_xformers_ops(device_types)
    monkeypatch.setattr(attn_mod, "_load_xformers", lambda: (ops, None))
    monkeypatch.setattr(attn_mod, "_device_reason", lambda device: None)
    return ops
