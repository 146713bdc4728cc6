"""set_attention: "sdpa" leaves a network's outputs unchanged and undoes "xformers"; every
reason diffusers refuses "xformers" (not installed, no CUDA device, an xformers that does not
run under this torch) is one line naming the fix; unknown names get a suggestion; the ddae
encoders' ``attention`` option. On CUDA with a working xformers: xformers against SDPA."""

from __future__ import annotations

from types import SimpleNamespace

import diffusers
import diffusers.models.attention_processor as attention_processor
import pytest
import torch
from diffusers.models.attention_processor import AttnProcessor2_0, XFormersAttnProcessor

import manyview_diffusion.attention as attention_mod
from manyview.encoders.attention import xformers_unavailable_reason
from manyview_diffusion import (
    DDAEDiT,
    DDAEUNet,
    SelfConditioned,
    attention_backend,
    build_network,
    set_attention,
)

CLASSES = ("UNet2DModel", "DiTTransformer2DModel")
T = torch.tensor([3, 500])
FIX = 'use attention = "sdpa"'
REASON_0035 = (
    "xformers 0.0.35 loaded without its CUDA extensions (built for a different torch/CUDA: "
    "it was built for torch 2.10.0+cu128 with CUDA 1208, this is torch 2.11.0+cu130)"
)


def _net(name="UNet2DModel"):
    torch.manual_seed(0)
    return build_network(name, {}, who="test", classes=CLASSES).eval()


def _x(name="UNet2DModel"):
    g = torch.Generator().manual_seed(1)
    if name == "UNet2DModel":
        return (torch.randn(2, 3, 16, 16, generator=g), T), {}
    return (torch.randn(2, 3, 8, 8, generator=g), T), {"class_labels": torch.tensor([10, 2])}


def _processors(net):
    return [m.processor for m in net.modules() if hasattr(m, "processor")]


@pytest.mark.parametrize("name", CLASSES)
def test_sdpa_leaves_the_network_unchanged(name):
    net = _net(name)
    args, kwargs = _x(name)
    before = _processors(net)
    assert before and all(isinstance(p, AttnProcessor2_0) for p in before)
    with torch.no_grad():
        want = net(*args, **kwargs).sample
        assert set_attention(net, "sdpa") is net
        got = net(*args, **kwargs).sample
    assert all(a is b for a, b in zip(before, _processors(net), strict=True))
    assert torch.equal(got, want) and attention_backend(net) == "sdpa"


def test_sdpa_undoes_xformers():
    net = _net()
    args, _ = _x()
    with torch.no_grad():
        want = net(*args).sample
    for module in net.modules():  # what enable_xformers_memory_efficient_attention leaves
        if hasattr(module, "set_processor"):
            module.set_processor(XFormersAttnProcessor())
    wrapped = SelfConditioned(net)
    assert attention_backend(wrapped) == "xformers"
    assert set_attention(wrapped, "sdpa") is wrapped  # a wrapper reaches its network
    assert attention_backend(net) == "sdpa"
    assert all(isinstance(p, AttnProcessor2_0) for p in _processors(net))
    with torch.no_grad():
        assert torch.equal(net(*args).sample, want)


@pytest.mark.parametrize("name", ["ddae_unet", "ddae_dit"])
def test_encoders_sdpa_option_changes_nothing(name):
    cls = DDAEUNet if name == "ddae_unet" else DDAEDiT
    torch.manual_seed(0)
    plain = cls().eval()
    torch.manual_seed(0)
    sdpa = cls(attention="sdpa").eval()
    x = plain.example_inputs(3)
    with torch.no_grad():
        assert torch.equal(sdpa(x), plain(x))
    assert sdpa.attention == "sdpa"


def test_unknown_backend_suggests():
    with pytest.raises(ValueError, match=r"unknown attention backend 'xformer'") as info:
        set_attention(_net(), "xformer")
    assert "did you mean 'xformers'" in str(info.value)
    with pytest.raises(ValueError, match=r"ddae_dit: unknown attention backend 'SDPA'") as info:
        DDAEDiT(attention="SDPA")
    assert "did you mean 'sdpa'" in str(info.value)
    with pytest.raises(ValueError, match="set_attention needs a diffusers model"):
        set_attention(torch.nn.Linear(2, 2), "sdpa")


def _one_line(info):
    text = str(info.value)
    assert "\n" not in text and FIX in text, text
    assert info.value.__cause__ is None and info.value.__suppress_context__
    return text


def test_xformers_not_installed(monkeypatch):
    monkeypatch.setattr(attention_processor, "is_xformers_available", lambda: False)
    net = _net()
    with pytest.raises(ValueError) as info:
        set_attention(net, "xformers")
    text = _one_line(info)
    assert text.startswith("attention: attention 'xformers' is unavailable: xformers is not")
    assert "pip install xformers" in text
    assert attention_backend(net) == "sdpa"  # nothing changed
    with pytest.raises(ValueError) as info:
        DDAEDiT(attention="xformers")
    assert _one_line(info).startswith("ddae_dit: attention 'xformers' is unavailable")


def test_xformers_without_a_cuda_device(monkeypatch):
    monkeypatch.setattr(attention_processor, "is_xformers_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError) as info:
        set_attention(_net("DiTTransformer2DModel"), "xformers", who="ddae_dit")
    text = _one_line(info)
    assert "runs on CUDA only and no CUDA device is available" in text
    assert text.startswith("ddae_dit: ")


def _no_operator(*args, **kwargs):
    raise NotImplementedError(
        "No operator found for `memory_efficient_attention_forward` with inputs:\n"
        "     query       : shape=(1, 2, 1, 40) (torch.float32)"
    )


def test_xformers_that_does_not_run_under_this_torch(monkeypatch):
    """xformers 0.0.35 under torch 2.11: it imports, diffusers' probe call finds no kernel."""
    monkeypatch.setattr(attention_processor, "is_xformers_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    fake = SimpleNamespace(ops=SimpleNamespace(memory_efficient_attention=_no_operator))
    monkeypatch.setattr(attention_processor, "xformers", fake, raising=False)
    monkeypatch.setattr(attention_mod, "xformers_unavailable_reason", lambda device: REASON_0035)
    net = _net()
    with pytest.raises(ValueError) as info:
        set_attention(net, "xformers")
    text = _one_line(info)
    assert f"the installed xformers does not run under this torch ({REASON_0035})" in text
    assert "install an xformers wheel built for it" in text
    assert attention_backend(net) == "sdpa"


def test_xformers_failure_without_a_probe_reason(monkeypatch):
    """Where the core's probe finds nothing wrong, the error's first line is the detail."""
    net = _net()
    monkeypatch.setattr(net, "enable_xformers_memory_efficient_attention", _no_operator)
    monkeypatch.setattr(attention_mod, "xformers_unavailable_reason", lambda device: None)
    with pytest.raises(ValueError) as info:
        set_attention(net, "xformers")
    assert (
        "does not run under this torch (NotImplementedError: No operator found for "
        "`memory_efficient_attention_forward` with inputs:)" in _one_line(info)
    )


def test_encoder_with_xformers_refuses_the_cpu(monkeypatch):
    calls = []
    monkeypatch.setattr(
        diffusers.DiTTransformer2DModel,
        "enable_xformers_memory_efficient_attention",
        lambda self, attention_op=None: calls.append(self),
    )
    encoder = DDAEDiT(attention="xformers")  # the size probe runs on SDPA, then the switch
    assert len(calls) == 1 and calls[0] is encoder.network and encoder.output_dim == 32
    with pytest.raises(ValueError, match="runs on CUDA only, the encoder is on cpu") as info:
        encoder(encoder.example_inputs(2))
    assert "\n" not in str(info.value) and "attention = 'sdpa'" in str(info.value)


XFORMERS_CUDA = xformers_unavailable_reason("cuda")


@pytest.mark.cuda
@pytest.mark.skipif(XFORMERS_CUDA is not None, reason=f"xformers cannot run: {XFORMERS_CUDA}")
@pytest.mark.parametrize("name", ["ddae_unet", "ddae_dit"])
def test_cuda_xformers_features_match_sdpa(name):
    cls = DDAEUNet if name == "ddae_unet" else DDAEDiT
    torch.manual_seed(0)
    sdpa = cls().eval().cuda()
    torch.manual_seed(0)
    xformers = cls(attention="xformers").eval().cuda()
    assert attention_backend(xformers) == "xformers"
    x = sdpa.example_inputs(4).cuda()
    with torch.no_grad():
        torch.testing.assert_close(xformers(x), sdpa(x), atol=1e-4, rtol=1e-4)
    net, args = xformers.network, (torch.randn(4, 3, 8, 8, device="cuda"),)
    if name == "ddae_unet":
        args = (torch.randn(4, 3, 16, 16, device="cuda"),)
    kwargs = {} if name == "ddae_unet" else {"class_labels": torch.full((4,), 10, device="cuda")}
    t = torch.tensor([3, 100, 500, 900], device="cuda")
    with torch.no_grad():
        got = net(*args, t, **kwargs).sample
        set_attention(net, "sdpa")
        want = net(*args, t, **kwargs).sample
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
