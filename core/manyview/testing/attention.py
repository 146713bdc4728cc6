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

__all__ = ["check_attention_option", "fake_xformers", "reference_xformers_ops"]


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
    """Make :mod:`manyview.encoders.attention` use :func:`reference_xformers_ops` as if xformers and
    CUDA were there (``monkeypatch``: pytest's fixture); return the ops (``.calls`` records
    each call's bias)."""
    import manyview.encoders.attention as attn_mod

    ops = reference_xformers_ops(device_types)
    monkeypatch.setattr(attn_mod, "_load_xformers", lambda: (ops, None))
    monkeypatch.setattr(attn_mod, "_device_reason", lambda device: None)
    return ops


def check_attention_option(
    build: Any, inputs: Any, monkeypatch: Any, *, who: str, atol: float = 1e-5
) -> None:
    """The contract of an encoder's ``attention=`` option (``build(**kwargs)`` makes the
    encoder, ``inputs`` is a batch it takes, ``who`` its registered name):

    - ``attention="sdpa"`` is the default: the same state dict and the same outputs;
    - where xformers cannot run (not installed; installed without its CUDA extensions),
      ``attention="xformers"`` raises a ValueError naming ``who``, the reason and the fix;
    - with xformers present (the :func:`fake_xformers` stand-in), the encoder loads the
      default's state dict strictly, its outputs and gradients match, and the backend is used;
    - an unknown backend name is a ValueError suggesting ``'sdpa'``.
    """
    import re

    import pytest

    import manyview.encoders.attention as attn_mod

    def pair(**kwargs: Any) -> tuple[Any, Any]:
        torch.manual_seed(0)
        default = build()
        torch.manual_seed(0)
        other = build(**kwargs)
        other.load_state_dict(default.state_dict())  # strict: the same keys and shapes
        return default, other

    default, sdpa = pair(attention="sdpa")
    for train in (True, False):
        default.train(train)
        sdpa.train(train)
        assert torch.equal(sdpa(inputs), default(inputs)), f"{who}: attention='sdpa' changed"
    for reason in (attn_mod.NOT_INSTALLED, "xformers loaded without its CUDA extensions"):
        with monkeypatch.context() as m:
            m.setattr(attn_mod, "_load_xformers", lambda reason=reason: (None, reason))
            with pytest.raises(ValueError, match=re.escape(reason)) as info:
                build(attention="xformers")
        message = str(info.value)
        assert f"{who}: attention='xformers' is unavailable" in message, message
        assert "Use attention='sdpa'" in message, message
    with monkeypatch.context() as m:
        ops = fake_xformers(m)
        default, xf = pair(attention="xformers")
        for enc in (default, xf):
            enc.eval()
        with torch.no_grad():
            torch.testing.assert_close(xf(inputs), default(inputs), atol=atol, rtol=atol)
        assert ops.calls, f"{who}: attention='xformers' never called xformers"
        grads = []
        for enc in (default, xf):
            enc.train()
            enc.zero_grad()
            torch.manual_seed(0)
            enc(inputs).float().pow(2).sum().backward()
            grads.append({k: p.grad for k, p in enc.named_parameters() if p.grad is not None})
        assert grads[0].keys() == grads[1].keys()
        for key, want in grads[0].items():
            torch.testing.assert_close(grads[1][key], want, atol=20 * atol, rtol=20 * atol)
    with pytest.raises(ValueError, match="did you mean 'sdpa'"):
        build(attention="spda")
