"""manyview.encoders.attention: the SDPA/xformers switch and MultiheadSelfAttention.

On the CPU: MultiheadSelfAttention equals nn.MultiheadAttention (float64, every mask kind,
train and eval, gradients, state dicts both ways), use_attention_backend leaves transformer
outputs unchanged, the xformers probe reports why it cannot run (and prints nothing), and a
fake xformers (a reference implementation with xformers' layout and bias-alignment checks)
exercises the "xformers" code path. On CUDA with a working xformers: xformers against SDPA.
"""

from __future__ import annotations

import copy
import math
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import manyview.encoders.attention as attn_mod
import manyview.testing.attention as testing_attention
from manyview.encoders.attention import (
    BACKENDS,
    MultiheadSelfAttention,
    attention,
    use_attention_backend,
    xformers_unavailable_reason,
)

E, H, N, T = 16, 4, 3, 7
XFORMERS_CUDA = xformers_unavailable_reason("cuda")


# --------------------------------------------------------------------------------------------
# helpers


def _pair(
    dropout: float = 0.0, bias: bool = True, batch_first: bool = True
) -> tuple[nn.MultiheadAttention, MultiheadSelfAttention]:
    """An nn.MultiheadAttention (float64) and a MultiheadSelfAttention loaded from it."""
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(E, H, dropout=dropout, bias=bias, batch_first=batch_first)
    mha = mha.double()
    with torch.no_grad():  # non-zero biases, so that they are tested
        for p in mha.parameters():
            p.add_(0.1 * torch.randn_like(p))
    msa = MultiheadSelfAttention(E, H, dropout=dropout, bias=bias, batch_first=batch_first)
    msa.double().load_state_dict(mha.state_dict())
    return mha, msa


def _masks(kind: str, n: int = N, t: int = T) -> dict[str, Any]:
    """Keyword arguments of a mask kind; no query row is ever fully masked."""
    g = torch.Generator().manual_seed(1)
    eye = torch.eye(t, dtype=torch.bool)
    causal = torch.ones(t, t, dtype=torch.bool).triu(1)
    kpm = torch.zeros(n, t, dtype=torch.bool)
    kpm[0, -2:] = True
    kpm[1, -1] = True
    if kind == "none":
        return {}
    if kind == "bool_attn":
        return {"attn_mask": (torch.rand(t, t, generator=g) < 0.4) & ~eye}
    if kind == "float_attn":
        return {"attn_mask": torch.randn(t, t, generator=g, dtype=torch.float64)}
    if kind == "bool_attn_3d":
        return {"attn_mask": (torch.rand(n * H, t, t, generator=g) < 0.4) & ~eye}
    if kind == "float_attn_3d":
        return {"attn_mask": torch.randn(n * H, t, t, generator=g, dtype=torch.float64)}
    if kind == "key_padding":
        return {"key_padding_mask": kpm}
    if kind == "float_key_padding":
        return {"key_padding_mask": torch.zeros(n, t, dtype=torch.float64).masked_fill(kpm, -1e9)}
    if kind == "key_padding_and_bool_attn":
        return {"key_padding_mask": kpm, "attn_mask": causal}
    if kind == "causal":
        return {"attn_mask": causal, "is_causal": True}
    if kind == "causal_float":
        return {"attn_mask": torch.zeros(t, t).masked_fill(causal, -math.inf).double()}
    if kind == "causal_and_key_padding":
        return {"attn_mask": causal, "is_causal": True, "key_padding_mask": kpm}
    raise AssertionError(kind)


MASK_KINDS = [
    "none",
    "bool_attn",
    "float_attn",
    "bool_attn_3d",
    "float_attn_3d",
    "key_padding",
    "float_key_padding",
    "key_padding_and_bool_attn",
    "causal",
    "causal_float",
    "causal_and_key_padding",
]


@pytest.fixture
def fake_xformers(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """The "xformers" backend runnable on the CPU (manyview.testing's stand-in)."""
    return testing_attention.fake_xformers(monkeypatch)


@pytest.fixture
def clean_xformers_import(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Forget any xformers import (modules, the cached probe, the captured log) around a test."""

    def forget() -> None:
        for name in [m for m in sys.modules if m == "xformers" or m.startswith("xformers.")]:
            del sys.modules[name]
        attn_mod._load_xformers.cache_clear()
        attn_mod.xformers_import_log.clear()

    saved = {m: mod for m, mod in sys.modules.items() if m.split(".")[0] == "xformers"}
    forget()
    yield
    monkeypatch.undo()
    forget()
    sys.modules.update(saved)


# --------------------------------------------------------------------------------------------
# MultiheadSelfAttention against nn.MultiheadAttention


@pytest.mark.parametrize("mode", ["train", "eval", "eval_no_grad"])
@pytest.mark.parametrize("kind", MASK_KINDS)
def test_equals_nn_multihead_attention(kind: str, mode: str) -> None:
    mha, msa = _pair()
    mha.train(mode == "train")
    msa.train(mode == "train")
    x = torch.randn(N, T, E, dtype=torch.float64)
    kwargs = _masks(kind)
    with torch.set_grad_enabled(mode != "eval_no_grad"):  # no grad: torch's MHA fast path
        want = mha(x, x, x, need_weights=False, **kwargs)[0]
        got, weights = msa(x, x, x, need_weights=False, **kwargs)
    assert weights is None
    assert not torch.isnan(want).any()
    torch.testing.assert_close(got, want, atol=1e-12, rtol=0)


def test_causal_without_attn_mask_is_causal() -> None:
    mha, msa = _pair()
    x = torch.randn(N, T, E, dtype=torch.float64)
    causal = torch.ones(T, T, dtype=torch.bool).triu(1)
    want = mha(x, x, x, need_weights=False, attn_mask=causal)[0]
    torch.testing.assert_close(msa(x, x, x, is_causal=True)[0], want, atol=1e-12, rtol=0)
    kpm = _masks("key_padding")["key_padding_mask"]
    want = mha(x, x, x, need_weights=False, attn_mask=causal, key_padding_mask=kpm)[0]
    got = msa(x, x, x, is_causal=True, key_padding_mask=kpm)[0]
    torch.testing.assert_close(got, want, atol=1e-12, rtol=0)


def _outputs_and_gradients(
    mha: nn.Module, msa: nn.Module, kwargs: dict, weight: torch.Tensor | None = None
) -> list[list[torch.Tensor]]:
    """For each module, on one random input: [output, input gradient, parameter gradients
    by name] of Σ (weight ⊙ output)²."""
    x = torch.randn(N, T, E, dtype=torch.float64)
    runs = []
    for module in (mha, msa):
        xi = x.clone().requires_grad_(True)
        out = module(xi, xi, xi, need_weights=False, **kwargs)[0]
        (out if weight is None else out * weight).pow(2).sum().backward()
        runs.append([out, xi.grad, *(p.grad for _, p in sorted(module.named_parameters()))])
    return runs


@pytest.mark.parametrize("kind", ["none", "bool_attn", "key_padding_and_bool_attn", "causal"])
def test_gradients_equal(kind: str) -> None:
    mha, msa = _pair()
    weight = torch.linspace(-1, 1, E, dtype=torch.float64)
    grads = [run[1:] for run in _outputs_and_gradients(mha, msa, _masks(kind), weight)]
    assert len(grads[0]) == len(grads[1]) == 5
    for want, got in zip(*grads):
        torch.testing.assert_close(got, want, atol=1e-12, rtol=0)


def test_state_dict_round_trip_both_ways() -> None:
    for bias in (True, False):
        mha, msa = _pair(bias=bias)
        assert list(msa.state_dict()) == list(mha.state_dict())
        for key, value in mha.state_dict().items():
            assert msa.state_dict()[key].shape == value.shape
        fresh_mha = nn.MultiheadAttention(E, H, bias=bias, batch_first=True).double()
        fresh_mha.load_state_dict(msa.state_dict())  # strict
        fresh_msa = MultiheadSelfAttention(E, H, bias=bias).double()
        fresh_msa.load_state_dict(fresh_mha.state_dict())
        x = torch.randn(2, T, E, dtype=torch.float64)
        want = mha(x, x, x, need_weights=False)[0]
        torch.testing.assert_close(fresh_msa(x, x, x)[0], want, atol=1e-12, rtol=0)


def test_attributes_and_initialisation_match() -> None:
    msa = MultiheadSelfAttention(E, H, dropout=0.1)
    assert (msa.embed_dim, msa.num_heads, msa.dropout, msa.batch_first) == (E, H, 0.1, True)
    assert msa._qkv_same_embed_dim is False and msa.backend == "sdpa"
    assert isinstance(msa.out_proj, nn.Linear)
    assert msa.in_proj_weight.shape == (3 * E, E) and msa.in_proj_bias.shape == (3 * E,)
    assert torch.all(msa.in_proj_bias == 0) and torch.all(msa.out_proj.bias == 0)
    bound = math.sqrt(6 / (E + 3 * E))  # xavier_uniform_ on (3E, E), as nn.MultiheadAttention
    assert msa.in_proj_weight.abs().max() <= bound and msa.in_proj_weight.std() > bound / 4
    assert "backend='sdpa'" in repr(msa)


def test_other_layouts_and_distinct_tensors() -> None:
    x = torch.randn(N, T, E, dtype=torch.float64)
    # batch_first=False
    mha, msa = _pair(batch_first=False)
    xt = x.transpose(0, 1)
    torch.testing.assert_close(
        msa(xt, xt, xt)[0], mha(xt, xt, xt, need_weights=False)[0], atol=1e-12, rtol=0
    )
    # unbatched
    mha, msa = _pair()
    torch.testing.assert_close(
        msa(x[0], x[0], x[0])[0], mha(x[0], x[0], x[0], need_weights=False)[0], atol=1e-12, rtol=0
    )
    # three tensors of one shape: each projected with its own slice
    k, v = torch.randn_like(x), torch.randn_like(x)
    torch.testing.assert_close(
        msa(x, k, v)[0], mha(x, k, v, need_weights=False)[0], atol=1e-12, rtol=0
    )
    # no bias
    mha, msa = _pair(bias=False)
    torch.testing.assert_close(
        msa(x, x, x)[0], mha(x, x, x, need_weights=False)[0], atol=1e-12, rtol=0
    )


def test_dropout_only_in_training() -> None:
    mha, msa = _pair(dropout=0.5)
    x = torch.randn(N, T, E, dtype=torch.float64)
    torch.manual_seed(3)
    a = msa(x, x, x)[0]
    b = msa(x, x, x)[0]
    assert not torch.allclose(a, b)
    torch.manual_seed(3)  # the same random draws as torch's (both call SDPA with dropout_p)
    torch.testing.assert_close(a, mha(x, x, x, need_weights=False)[0], atol=1e-12, rtol=0)
    msa.eval()
    mha.eval()
    torch.testing.assert_close(
        msa(x, x, x)[0], mha(x, x, x, need_weights=False)[0], atol=1e-12, rtol=0
    )


def test_refusals() -> None:
    _, msa = _pair()
    x = torch.randn(N, T, E, dtype=torch.float64)
    with pytest.raises(ValueError, match="need_weights=True is not supported"):
        msa(x, x, x, need_weights=True)
    with pytest.raises(ValueError, match="self-attention only"):
        msa(x, x[:, :3], x[:, :3])
    with pytest.raises(ValueError, match="attn_mask must be"):
        msa(x, x, x, attn_mask=torch.zeros(T, T + 1, dtype=torch.bool))
    with pytest.raises(ValueError, match="key_padding_mask must be"):
        msa(x, x, x, key_padding_mask=torch.zeros(N, T + 1, dtype=torch.bool))
    with pytest.raises(ValueError, match="bool or float"):
        msa(x, x, x, attn_mask=torch.zeros(T, T, dtype=torch.long))
    with pytest.raises(ValueError, match=r"expects \(N, T, 16\)"):
        msa(x[..., :8], x[..., :8], x[..., :8])
    with pytest.raises(ValueError, match="multiple of num_heads"):
        MultiheadSelfAttention(10, 4)
    with pytest.raises(ValueError, match="did you mean 'sdpa'"):
        msa.backend = "spda"
    assert msa.backend == "sdpa"
    for bad in (
        nn.MultiheadAttention(E, H, kdim=8, vdim=8, batch_first=True),
        nn.MultiheadAttention(E, H, add_bias_kv=True, batch_first=True),
        nn.MultiheadAttention(E, H, add_zero_attn=True, batch_first=True),
    ):
        with pytest.raises(ValueError, match="only plain self-attention"):
            use_attention_backend(nn.Sequential(bad), "sdpa")


# --------------------------------------------------------------------------------------------
# attention() and the backend names


def test_attention_sdpa_is_torch_sdpa() -> None:
    q, k, v = (torch.randn(2, H, T, 4, dtype=torch.float64) for _ in range(3))
    mask = torch.rand(T, T) < 0.7
    mask.fill_diagonal_(True)
    for kwargs in ({}, {"attn_mask": mask}, {"is_causal": True}):
        torch.testing.assert_close(
            attention(q, k, v, **kwargs), F.scaled_dot_product_attention(q, k, v, **kwargs)
        )
    with pytest.raises(ValueError, match="not both"):
        attention(q, k, v, attn_mask=mask, is_causal=True)
    with pytest.raises(ValueError, match=r"must be \(N, H, T, Dh\)"):
        attention(q[0], k[0], v[0])


@pytest.mark.parametrize(("name", "hint"), [("spda", "sdpa"), ("xformer", "xformers")])
def test_unknown_backend_suggests(name: str, hint: str) -> None:
    q = torch.randn(1, 1, 2, 4)
    with pytest.raises(ValueError, match=f"did you mean '{hint}'"):
        attention(q, q, q, backend=name)
    with pytest.raises(ValueError, match=f"did you mean '{hint}'"):
        use_attention_backend(nn.Sequential(nn.MultiheadAttention(4, 1)), name)
    with pytest.raises(ValueError, match="choose from sdpa, xformers"):
        attention(q, q, q, backend="flash")
    assert BACKENDS == ("sdpa", "xformers")


# --------------------------------------------------------------------------------------------
# use_attention_backend on torch's transformer


def _encoder(norm_first: bool = True, nested: bool = False, dropout: float = 0.0) -> nn.Module:
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(
        E, H, 2 * E, dropout=dropout, batch_first=True, norm_first=norm_first
    )
    return nn.TransformerEncoder(layer, 2, enable_nested_tensor=nested).double()


@pytest.mark.parametrize("mode", ["train", "eval", "eval_no_grad"])
@pytest.mark.parametrize("kind", ["none", "key_padding", "causal"])
def test_use_attention_backend_keeps_transformer_outputs(kind: str, mode: str) -> None:
    original = _encoder()
    swapped = copy.deepcopy(original)
    params = [id(p) for p in swapped.parameters()]
    keys = list(swapped.state_dict())
    assert use_attention_backend(swapped, "sdpa") == 2
    assert all(isinstance(layer.self_attn, MultiheadSelfAttention) for layer in swapped.layers)
    assert [id(p) for p in swapped.parameters()] == params  # the same Parameter objects
    assert list(swapped.state_dict()) == keys
    for m in (original, swapped):
        m.train(mode == "train")
    x = torch.randn(N, T, E, dtype=torch.float64)
    masks = _masks(kind)
    kwargs: dict[str, Any] = {}
    if "key_padding_mask" in masks:
        kwargs["src_key_padding_mask"] = masks["key_padding_mask"]
    if masks.get("is_causal"):
        kwargs.update(mask=nn.Transformer.generate_square_subsequent_mask(T, dtype=x.dtype))
        kwargs.update(is_causal=True)
    with torch.set_grad_enabled(mode != "eval_no_grad"):
        want = original(x, **kwargs)
        got = swapped(x, **kwargs)
    torch.testing.assert_close(got, want, atol=1e-12, rtol=0)


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors")
def test_swapped_transformer_bypasses_torch_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """In eval mode without grad, torch's fused layer would read the weights itself: the
    swapped modules keep it off and attention goes through the chosen backend."""
    model = _encoder(norm_first=False, nested=True).eval()
    x = torch.randn(N, T, E, dtype=torch.float64)
    kpm = _masks("key_padding")["key_padding_mask"]
    with torch.no_grad():
        want = model(x, src_key_padding_mask=kpm)  # nested tensors + fused layers
    use_attention_backend(model, "sdpa")
    assert model.use_nested_tensor is False

    def forbidden(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("torch's fused encoder layer ran")

    calls = []
    sdpa = F.scaled_dot_product_attention

    def counting(*args: Any, **kwargs: Any) -> Tensor:
        calls.append(1)
        return sdpa(*args, **kwargs)

    monkeypatch.setattr(torch, "_transformer_encoder_layer_fwd", forbidden)
    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", counting)
    with torch.no_grad():
        got = model(x, src_key_padding_mask=kpm)
    assert len(calls) == 2
    keep = ~kpm  # the nested-tensor path zeroes padded positions; the real ones agree
    torch.testing.assert_close(got[keep], want[keep], atol=1e-12, rtol=0)


def test_use_attention_backend_sets_existing_modules(fake_xformers: SimpleNamespace) -> None:
    model = nn.Sequential(MultiheadSelfAttention(E, H), nn.Linear(E, E))
    model.append(nn.TransformerEncoderLayer(E, H, batch_first=True))
    assert use_attention_backend(model, "xformers") == 2
    assert model[0].backend == "xformers" and model[2].self_attn.backend == "xformers"
    assert use_attention_backend(model, "sdpa") == 2
    assert model[0].backend == "sdpa" and model[2].self_attn.backend == "sdpa"
    assert use_attention_backend(nn.Linear(2, 2), "sdpa") == 0
    with pytest.raises(ValueError, match=r"contains the nn\.MultiheadAttention"):
        use_attention_backend(nn.MultiheadAttention(E, H), "sdpa")


# --------------------------------------------------------------------------------------------
# xformers unavailable: the probe and the errors


def test_xformers_not_installed(
    monkeypatch: pytest.MonkeyPatch, clean_xformers_import: None
) -> None:
    monkeypatch.setitem(sys.modules, "xformers", None)  # import xformers -> ModuleNotFoundError
    reason = xformers_unavailable_reason("cuda")
    assert reason == attn_mod.NOT_INSTALLED
    assert "xformers is not installed" in reason and "pip install xformers" in reason
    q = torch.randn(1, 1, 2, 4)
    with pytest.raises(RuntimeError, match=r"xformers is not installed.*Use attention='sdpa'"):
        attention(q, q, q, backend="xformers")
    mha, msa = _pair()
    msa.backend = "xformers"  # settable; it fails when called, with the reason
    x = torch.randn(1, T, E, dtype=torch.float64)
    with pytest.raises(RuntimeError, match="xformers is not installed"):
        msa(x, x, x)
    with pytest.raises(ValueError, match=r"xformers is not installed.*Use attention='sdpa'"):
        use_attention_backend(nn.Sequential(mha), "xformers")
    assert isinstance(mha, nn.MultiheadAttention)


FAKE_INIT = """
import logging
import warnings

__version__ = "0.0.35"
logging.getLogger("xformers").warning(
    "WARNING[XFORMERS]: xFormers can't load C++/CUDA extensions. xFormers was built for:"
)
warnings.warn("A matching Triton is not available", UserWarning)
from xformers import _cpp_lib
_has_cpp_library = _cpp_lib._has_cpp_library
"""

FAKE_CPP_LIB = """
class _BuildInfo:
    torch_version = "2.10.0+cu128"
    cuda_version = 1208


class xFormersInvalidLibException(Exception):
    def __init__(self, build_info):
        self.build_info = build_info


_has_cpp_library = {loaded}
_cpp_library_load_exception = None if _has_cpp_library else xFormersInvalidLibException(
    _BuildInfo()
)
"""

FAKE_OPS = """
def memory_efficient_attention(q, k, v, attn_bias=None, p=0.0):
    raise NotImplementedError("No operator found for memory_efficient_attention_forward")


class LowerTriangularMask:
    pass
"""


def _write_fake_xformers(root: Path, loaded: bool) -> None:
    pkg = root / "xformers"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent(FAKE_INIT))
    (pkg / "_cpp_lib.py").write_text(FAKE_CPP_LIB.format(loaded=loaded))
    (pkg / "ops.py").write_text(FAKE_OPS)


def test_xformers_without_cuda_extensions_quietly(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    clean_xformers_import: None,
) -> None:
    """xformers installed for another torch/CUDA (torch 2.11 + cu130 vs a cu128 wheel)."""
    _write_fake_xformers(tmp_path, loaded=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    for _ in range(2):
        reason = xformers_unavailable_reason("cuda")
        assert reason is not None
        assert "xformers 0.0.35 loaded without its CUDA extensions" in reason
        assert "built for a different torch/CUDA" in reason and "2.10.0+cu128" in reason
        assert "\n" not in reason
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""  # captured, never printed
    log = "\n".join(attn_mod.xformers_import_log)
    assert "WARNING[XFORMERS]" in log and "Triton" in log
    assert log.count("WARNING[XFORMERS]") == 1  # imported once
    q = torch.randn(1, 1, 2, 4)
    with pytest.raises(RuntimeError, match=r"without its CUDA extensions.*attention='sdpa'"):
        attention(q, q, q, backend="xformers")


def test_xformers_loaded_but_not_on_cuda(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_xformers_import: None
) -> None:
    _write_fake_xformers(tmp_path, loaded=True)
    monkeypatch.syspath_prepend(str(tmp_path))
    reason = xformers_unavailable_reason("cpu")
    assert reason == (
        "xformers' memory-efficient attention runs on CUDA only; this tensor is on cpu"
    )
    q = torch.randn(1, 1, 2, 4)
    with pytest.raises(RuntimeError, match="runs on CUDA only; this tensor is on cpu"):
        attention(q, q, q, backend="xformers")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert "no CUDA device is available" in xformers_unavailable_reason()
    assert "no CUDA device is available" in xformers_unavailable_reason("cuda")


def test_xformers_import_error_is_a_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_xformers_import: None
) -> None:
    pkg = tmp_path / "xformers"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("raise OSError('libcudart.so.12: cannot open shared object')")
    monkeypatch.syspath_prepend(str(tmp_path))
    reason = xformers_unavailable_reason("cuda")
    assert reason is not None and "xformers failed to import (OSError: libcudart.so.12" in reason


def test_real_environment_reason_is_one_line() -> None:
    reason = xformers_unavailable_reason()
    if reason is None:
        pytest.skip("xformers runs here")
    assert reason and "\n" not in reason


# --------------------------------------------------------------------------------------------
# the "xformers" code path, against a reference implementation on the CPU


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("tk", [5, 8, 13])
def test_xformers_path_layout_and_bias(fake_xformers: SimpleNamespace, tk: int, dtype) -> None:
    g = torch.Generator().manual_seed(0)
    q = torch.randn(2, H, tk, 8, generator=g, dtype=dtype)
    k, v = (torch.randn(2, H, tk, 8, generator=g, dtype=dtype) for _ in range(2))
    allowed = torch.rand(2, 1, tk, tk, generator=g) < 0.6
    allowed |= torch.eye(tk, dtype=torch.bool)
    for kwargs in (
        {},
        {"is_causal": True},
        {"attn_mask": allowed},
        {"attn_mask": allowed[0, 0]},
        {"attn_mask": torch.randn(tk, tk, generator=g, dtype=dtype)},
    ):
        got = attention(q, k, v, backend="xformers", **kwargs)
        want = attention(q, k, v, backend="sdpa", **kwargs)
        torch.testing.assert_close(got, want)
    assert isinstance(fake_xformers.calls[1], fake_xformers.LowerTriangularMask)


@pytest.mark.parametrize("kind", ["none", "bool_attn_3d", "key_padding_and_bool_attn", "causal"])
def test_xformers_path_module_and_gradients(fake_xformers: SimpleNamespace, kind: str) -> None:
    mha, msa = _pair()
    msa.backend = "xformers"
    grads = _outputs_and_gradients(mha, msa, _masks(kind))
    for want, got in zip(*grads):
        torch.testing.assert_close(got, want, atol=1e-12, rtol=0)
    assert len(fake_xformers.calls) == 1


def test_xformers_path_on_a_transformer(fake_xformers: SimpleNamespace) -> None:
    original = _encoder().eval()
    swapped = copy.deepcopy(original)
    assert use_attention_backend(swapped, "xformers") == 2
    x = torch.randn(N, T, E, dtype=torch.float64)
    kpm = _masks("key_padding")["key_padding_mask"]
    with torch.no_grad():
        torch.testing.assert_close(
            swapped(x, src_key_padding_mask=kpm),
            original(x, src_key_padding_mask=kpm),
            atol=1e-12,
            rtol=0,
        )
    assert len(fake_xformers.calls) == 2


# --------------------------------------------------------------------------------------------
# CUDA: xformers against SDPA


needs_xformers = pytest.mark.skipif(
    XFORMERS_CUDA is not None, reason=f"xformers cannot run: {XFORMERS_CUDA}"
)
TOL = {
    torch.float32: {"atol": 2e-5, "rtol": 1e-4},
    torch.float16: {"atol": 3e-3, "rtol": 3e-3},
    torch.bfloat16: {"atol": 2e-2, "rtol": 2e-2},
}


@pytest.mark.cuda
@needs_xformers
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("mask", ["none", "bool", "float", "causal"])
@pytest.mark.parametrize("tk", [13, 64])
def test_cuda_xformers_matches_sdpa(dtype: torch.dtype, mask: str, tk: int) -> None:
    g = torch.Generator(device="cuda").manual_seed(0)
    shape = (3, 4, tk, 32)
    q, k, v = (torch.randn(shape, device="cuda", generator=g, dtype=dtype) for _ in range(3))
    kwargs: dict[str, Any] = {}
    if mask == "bool":
        allowed = torch.rand(3, 1, tk, tk, device="cuda", generator=g) < 0.7
        kwargs["attn_mask"] = allowed | torch.eye(tk, dtype=torch.bool, device="cuda")
    elif mask == "float":
        kwargs["attn_mask"] = torch.randn(tk, tk, device="cuda", generator=g, dtype=dtype)
    elif mask == "causal":
        kwargs["is_causal"] = True
    outs, grads = [], []
    for backend in ("sdpa", "xformers"):
        qi, ki, vi = (t.clone().requires_grad_(True) for t in (q, k, v))
        out = attention(qi, ki, vi, backend=backend, **kwargs)
        out.float().pow(2).sum().backward()
        outs.append(out.float())
        grads.append([t.grad.float() for t in (qi, ki, vi)])
    torch.testing.assert_close(outs[1], outs[0], **TOL[dtype])
    for want, got in zip(*grads):
        scale = want.abs().max().clamp(min=1.0)
        torch.testing.assert_close(got / scale, want / scale, **TOL[dtype])


@pytest.mark.cuda
@needs_xformers
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_cuda_transformer_on_xformers(dtype: torch.dtype) -> None:
    original = _encoder().to("cuda", torch.float32)
    swapped = copy.deepcopy(original)
    use_attention_backend(swapped, "xformers")
    x = torch.randn(N, 21, E, device="cuda")
    kpm = torch.zeros(N, 21, dtype=torch.bool, device="cuda")
    kpm[0, -5:] = True
    with torch.autocast("cuda", dtype=dtype, enabled=dtype != torch.float32):
        want = original(x, src_key_padding_mask=kpm)
        got = swapped(x, src_key_padding_mask=kpm)
    torch.testing.assert_close(got.float(), want.float(), **TOL[dtype])
    got.float().sum().backward()
    assert all(p.grad is not None for p in swapped.parameters())
