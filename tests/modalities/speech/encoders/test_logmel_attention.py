"""logmel encoders: the ``attention`` option (SDPA by default, xformers where it runs).

The "xformers" path is exercised on the CPU with a reference stand-in for ``xformers.ops``
(same layout and bias checks); the real xformers needs CUDA and is tested in
tests/core/encoders/test_attention.py when it can run.
"""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch import nn

import manyview.encoders.attention as attn_mod
import manyview.testing.attention as testing_attention
from manyview.encoders.attention import (
    MultiheadSelfAttention,
    use_attention_backend,
    xformers_unavailable_reason,
)
from manyview.testing import check_attention_option
from manyview.testing.attention import reference_xformers_ops as _reference_ops
from manyview_speech.encoders.logmel import LogMelEncoder, LogMelTransformerEncoder


@pytest.fixture
def fake_xformers(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """The "xformers" backend runnable on the CPU (manyview.testing's stand-in)."""
    return testing_attention.fake_xformers(monkeypatch)


def _pair(**kwargs: Any) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    default = LogMelTransformerEncoder(32, channels=(16, 32), **kwargs.pop("base", {}))
    torch.manual_seed(0)
    other = LogMelTransformerEncoder(32, channels=(16, 32), **kwargs)
    other.load_state_dict(default.state_dict())  # strict: the same keys and shapes
    return default, other


def test_sdpa_is_the_unchanged_default() -> None:
    default, sdpa = _pair(attention="sdpa")
    assert default.attention == sdpa.attention == "sdpa"
    for enc in (default, sdpa):
        assert all(
            type(layer.self_attn) is nn.MultiheadAttention for layer in enc.transformer.layers
        )
    for key, value in default.state_dict().items():
        assert torch.equal(sdpa.state_dict()[key], value)
    x = default.example_inputs(3)
    for train in (True, False):
        default.train(train)
        sdpa.train(train)
        assert torch.equal(sdpa(x), default(x))


def test_xformers_here_raises_the_reason() -> None:
    reason = xformers_unavailable_reason()
    if reason is None:
        pytest.skip("xformers runs here")
    with pytest.raises(ValueError, match=re.escape(reason)) as info:
        LogMelTransformerEncoder(attention="xformers")
    assert "logmel_transformer: attention='xformers' is unavailable" in str(info.value)
    assert "Use attention='sdpa'" in str(info.value)


def test_the_attention_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    """manyview.testing's shared check: sdpa default, clear errors, xformers path equal."""
    check_attention_option(
        lambda **kw: LogMelTransformerEncoder(32, channels=(16, 32), **kw),
        LogMelTransformerEncoder(32, channels=(16, 32)).example_inputs(3),
        monkeypatch,
        who="logmel_transformer",
    )


def test_xformers_loaded_but_no_cuda_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(attn_mod, "_load_xformers", lambda: (_reference_ops(), None))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="runs on CUDA only; no CUDA device is available"):
        LogMelTransformerEncoder(attention="xformers")


def test_bad_attention_values() -> None:
    with pytest.raises(ValueError, match="did you mean 'sdpa'"):
        LogMelTransformerEncoder(attention="spda")
    with pytest.raises(ValueError, match="logmel_cnn: attention"):
        LogMelEncoder(attention="flash")


def test_xformers_on_a_pure_cnn_is_refused(fake_xformers: SimpleNamespace) -> None:
    with pytest.raises(ValueError, match=r"needs transformer layers \(transformer_layers > 0\)"):
        LogMelEncoder(attention="xformers")


def test_xformers_path_equals_default(fake_xformers: SimpleNamespace) -> None:
    default, xf = _pair(attention="xformers")
    assert xf.attention == "xformers"
    layers = xf.transformer.layers
    assert all(isinstance(layer.self_attn, MultiheadSelfAttention) for layer in layers)
    assert all(layer.self_attn.backend == "xformers" for layer in layers)
    assert list(xf.state_dict()) == list(default.state_dict())
    x = default.example_inputs(3)
    default.eval()
    xf.eval()
    with torch.no_grad():  # the default takes torch's fused fast path here
        torch.testing.assert_close(xf(x), default(x), atol=1e-5, rtol=1e-5)
    assert len(fake_xformers.calls) == 2
    default.train()
    xf.train()
    grads = []
    for enc in (default, xf):
        enc.zero_grad()
        enc(x).pow(2).sum().backward()
        grads.append({k: p.grad for k, p in enc.named_parameters()})
    for key, want in grads[0].items():
        torch.testing.assert_close(grads[1][key], want, atol=1e-4, rtol=1e-4)
    # and back: the same module runs on SDPA again
    assert use_attention_backend(xf.transformer, "sdpa") == 2
    xf.eval()
    default.eval()
    with torch.no_grad():
        torch.testing.assert_close(xf(x), default(x), atol=1e-5, rtol=1e-5)
