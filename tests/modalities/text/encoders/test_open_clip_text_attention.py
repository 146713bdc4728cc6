"""open_clip_text: the ``attention`` option (SDPA by default, xformers where it runs).

The "xformers" path is exercised on the CPU with a reference stand-in for ``xformers.ops``
(same layout and bias checks); the real xformers needs CUDA and is tested in
tests/core/encoders/test_attention.py when it can run.
"""

from __future__ import annotations

import copy
import re
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch import Tensor, nn

import manyview
import manyview.testing.attention as testing_attention
from manyview.encoders.attention import MultiheadSelfAttention, xformers_unavailable_reason
from manyview.testing import check_attention_option
from manyview_text.encoders.open_clip_text import OpenCLIPText
from manyview_text.models import build_clip

TEXTS = ["a photo of the digit seven", "the spoken word three", "a dog"]


@pytest.fixture
def fake_xformers(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """The "xformers" backend runnable on the CPU (manyview.testing's stand-in)."""
    return testing_attention.fake_xformers(monkeypatch)


def _pair(**kwargs: Any) -> tuple[OpenCLIPText, OpenCLIPText]:
    base = {k: v for k, v in kwargs.items() if k != "attention"}
    torch.manual_seed(0)
    default = manyview.create("encoder", "open_clip_text", **base)
    torch.manual_seed(0)
    other = manyview.create("encoder", "open_clip_text", **kwargs)
    other.load_state_dict(default.state_dict())  # strict: the same keys and shapes
    return default, other


def _attn_modules(enc: OpenCLIPText) -> list[nn.Module]:
    return [block.attn for block in enc.tower.transformer.resblocks]


def test_sdpa_is_the_unchanged_default() -> None:
    default, sdpa = _pair(attention="sdpa")
    assert default.attention == sdpa.attention == "sdpa"
    assert all(type(a) is nn.MultiheadAttention for a in _attn_modules(sdpa))
    for key, value in default.state_dict().items():
        assert torch.equal(sdpa.state_dict()[key], value)
    for train in (True, False):
        default.train(train)
        sdpa.train(train)
        assert torch.equal(sdpa(TEXTS), default(TEXTS))
    assert "attention='sdpa'" in repr(sdpa)


def test_xformers_here_raises_the_reason() -> None:
    reason = xformers_unavailable_reason()
    if reason is None:
        pytest.skip("xformers runs here")
    with pytest.raises(ValueError, match=re.escape(reason)) as info:
        manyview.create("encoder", "open_clip_text", attention="xformers")
    assert "open_clip_text: attention='xformers' is unavailable" in str(info.value)
    assert "Use attention='sdpa'" in str(info.value)


def test_the_attention_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    """manyview.testing's shared check: sdpa default, clear errors, xformers path equal."""
    check_attention_option(
        lambda **kw: manyview.create("encoder", "open_clip_text", **kw),
        TEXTS,
        monkeypatch,
        who="open_clip_text",
    )


def test_unknown_attention_suggests() -> None:
    with pytest.raises(ValueError, match=r"open_clip_text: attention.*did you mean 'xformers'"):
        OpenCLIPText(attention="xformer")
    with pytest.raises(ValueError, match="did you mean 'sdpa'"):
        OpenCLIPText.from_clip(build_clip("tiny"), attention="spda")


def test_custom_blocks_are_refused(fake_xformers: SimpleNamespace) -> None:
    with pytest.raises(ValueError, match="needs open_clip's default transformer blocks"):
        OpenCLIPText(attention="xformers", text_cfg={"qk_norm": True})
    enc = OpenCLIPText(text_cfg={"qk_norm": True})  # sdpa: open_clip's own Attention, as is
    assert enc(TEXTS).shape == (3, enc.output_dim)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"dropout": 0.1, "attn_dropout": 0.2},
        {"text_cfg": {"embed_cls": True, "pool_type": "last"}},  # (N*H, L, L) padding masks
    ],
)
def test_xformers_path_equals_default(fake_xformers: SimpleNamespace, kwargs: dict) -> None:
    default, xf = _pair(attention="xformers", **kwargs)
    assert xf.attention == "xformers"
    modules = _attn_modules(xf)
    assert all(isinstance(a, MultiheadSelfAttention) and a.backend == "xformers" for a in modules)
    assert all(a.dropout == kwargs.get("attn_dropout", 0.0) for a in modules)
    assert list(xf.state_dict()) == list(default.state_dict())
    default.eval()
    xf.eval()
    with torch.no_grad():
        torch.testing.assert_close(xf(TEXTS), default(TEXTS), atol=1e-5, rtol=1e-5)
    assert len(fake_xformers.calls) == len(modules)
    assert all(isinstance(b, Tensor) for b in fake_xformers.calls)  # open_clip's float mask
    teacher = copy.deepcopy(xf)  # an EMA teacher
    with torch.no_grad():
        torch.testing.assert_close(teacher(TEXTS), default(TEXTS), atol=1e-5, rtol=1e-5)
    if kwargs.get("dropout"):
        xf.train()
        assert not torch.allclose(xf(TEXTS), xf(TEXTS))
        return
    default.train()
    xf.train()
    grads = []
    for enc in (default.double(), xf.double()):  # float64: the two attention paths round apart
        enc(TEXTS).pow(2).sum().backward()
        grads.append({k: p.grad for k, p in enc.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    for key, want in grads[0].items():
        torch.testing.assert_close(grads[1][key], want, atol=1e-9, rtol=1e-9)


def test_from_clip_swaps_the_shared_tower(fake_xformers: SimpleNamespace) -> None:
    torch.manual_seed(0)
    clip = build_clip("tiny")
    before = {k: v.clone() for k, v in clip.state_dict().items()}
    enc = OpenCLIPText.from_clip(clip, attention="xformers")
    assert enc.tower is clip.text
    assert all(isinstance(a, MultiheadSelfAttention) for a in _attn_modules(enc))
    assert before.keys() == clip.state_dict().keys()
    default = OpenCLIPText.from_clip(build_clip("tiny"))
    default.tower.load_state_dict(enc.tower.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(enc.eval()(TEXTS), default.eval()(TEXTS), atol=1e-5, rtol=1e-5)
