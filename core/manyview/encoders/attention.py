"""Attention backends for the modality encoders: torch's SDPA, or xformers where it loads.

The default backend, ``"sdpa"``, is :func:`torch.nn.functional.scaled_dot_product_attention`
(which picks flash, memory-efficient or math kernels itself, on every device). ``"xformers"``
is ``xformers.ops.memory_efficient_attention``: CUDA only, and only where xformers loaded its
C++/CUDA extensions (a wheel built for this torch and CUDA). xformers is never a dependency;
it is imported lazily, once, with its import-time log and warnings captured (the reason it
cannot be used is reported by :func:`xformers_unavailable_reason` instead).

- :func:`attention` — the backend switch on ``(N, H, T, Dh)`` tensors.
- :class:`MultiheadSelfAttention` — a drop-in for batch-first ``nn.MultiheadAttention`` in
  self-attention use, with the same parameters (state dicts load both ways), running on a
  chosen backend. It never materialises attention weights.
- :func:`use_attention_backend` — swap every ``nn.MultiheadAttention`` of a model for it, in
  place, keeping the very same parameters.

This module imports torch only.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.linear import NonDynamicallyQuantizableLinear

from manyview.registry import did_you_mean

__all__ = [
    "BACKENDS",
    "MultiheadSelfAttention",
    "attention",
    "check_backend",
    "use_attention_backend",
    "xformers_unavailable_reason",
]

BACKENDS: tuple[str, ...] = ("sdpa", "xformers")

NOT_INSTALLED = (
    "xformers is not installed (pip install xformers; its wheels need a matching torch/CUDA build)"
)
# Device types xformers' memory-efficient attention has kernels for (ROCm is "cuda" in torch).
_XFORMERS_DEVICE_TYPES: tuple[str, ...] = ("cuda",)
# What xformers logged or warned while it was imported (kept for debugging, never printed).
xformers_import_log: list[str] = []


def check_backend(backend: str, who: str = "attention") -> str:
    """``backend`` if it is one of :data:`BACKENDS`; a ``ValueError`` with a suggestion if not."""
    if isinstance(backend, str) and backend in BACKENDS:
        return backend
    hint = did_you_mean(str(backend).lower(), BACKENDS, cutoff=0.5)
    raise ValueError(
        f"{who}: unknown attention backend {backend!r} (choose from {', '.join(BACKENDS)}){hint}"
    )


# --------------------------------------------------------------------------------------------
# xformers, loaded lazily


class _Records(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):  # a malformed record must not break the probe
            self.into.append(record.getMessage())


def _first_line(text: object) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else ""


def _no_extension_detail(xformers: Any) -> str:
    """Why xformers' C++/CUDA library did not load, in one line."""
    cpp_lib = getattr(xformers, "_cpp_lib", None)
    exc = getattr(cpp_lib, "_cpp_library_load_exception", None)
    info = getattr(exc, "build_info", None)
    if info is not None:
        try:
            return (
                f"it was built for torch {info.torch_version} with CUDA {info.cuda_version}, "
                f"this is torch {torch.__version__}"
            )
        except Exception:
            pass
    if exc is not None:
        return _first_line(exc) or type(exc).__name__
    if not any("WARNING[XFORMERS]" in line for line in xformers_import_log):
        return f"a build without kernels of its own; this is torch {torch.__version__}"
    return f"this is torch {torch.__version__}"


@functools.cache
def _load_xformers() -> tuple[Any, str | None]:
    """``(xformers.ops, None)``, or ``(None, reason)``. Imports xformers once, quietly."""
    logger = logging.getLogger("xformers")
    handler = _Records(xformers_import_log)
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False  # no root handler, and no "last resort" print to stderr
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                import xformers
            except ImportError as exc:
                if exc.name is not None and exc.name.split(".")[0] == "xformers":
                    return None, NOT_INSTALLED
                return None, f"xformers failed to import ({_first_line(exc)})"
            except Exception as exc:  # a broken install: any error, never raised here
                return None, f"xformers failed to import ({type(exc).__name__}: {_first_line(exc)})"
            version = getattr(xformers, "__version__", "?")
            if not getattr(xformers, "_has_cpp_library", False):
                return None, (
                    f"xformers {version} loaded without its CUDA extensions (built for a "
                    f"different torch/CUDA: {_no_extension_detail(xformers)})"
                )
            try:
                import xformers.ops as ops
            except Exception as exc:
                return None, (
                    f"xformers {version}: xformers.ops failed to import "
                    f"({type(exc).__name__}: {_first_line(exc)})"
                )
            if not callable(getattr(ops, "memory_efficient_attention", None)) or not hasattr(
                ops, "LowerTriangularMask"
            ):
                return None, f"xformers {version} has no xformers.ops.memory_efficient_attention"
            return ops, None
    finally:
        xformers_import_log.extend(f"{w.category.__name__}: {w.message}" for w in caught)
        logger.removeHandler(handler)
        logger.propagate = propagate


def _device_reason(device: torch.device | str | None) -> str | None:
    """Why xformers cannot run on ``device`` (``None``: on this machine's CUDA device)."""
    if device is None:
        if torch.cuda.is_available():
            return None
        return (
            "xformers' memory-efficient attention runs on CUDA only; no CUDA device is "
            "available (torch.cuda.is_available() is False)"
        )
    device = torch.device(device)
    if device.type not in _XFORMERS_DEVICE_TYPES:
        return (
            "xformers' memory-efficient attention runs on CUDA only; this tensor is on "
            f"{device.type}"
        )
    if device.type == "cuda" and not torch.cuda.is_available():
        return (
            "xformers' memory-efficient attention runs on CUDA only; no CUDA device is "
            "available (torch.cuda.is_available() is False)"
        )
    return None


def xformers_unavailable_reason(device: torch.device | str | None = None) -> str | None:
    """``None`` when the ``"xformers"`` backend can run on ``device``; otherwise why not.

    ``None`` needs: xformers imports, its C++/CUDA library loaded
    (``xformers._has_cpp_library``), ``xformers.ops.memory_efficient_attention`` exists, and
    ``device`` is a CUDA device (``device=None``: a CUDA device is available). Never raises;
    xformers' import-time warnings are captured (see ``xformers_import_log``), not printed.

    Args:
        device: a device, a device string (``"cuda"``, ``"cpu"``) or ``None``.

    Returns:
        ``None``, or a one-line reason.
    """
    try:
        _, reason = _load_xformers()
        return reason if reason is not None else _device_reason(device)
    except Exception as exc:  # never raise from a probe
        return f"xformers could not be checked ({type(exc).__name__}: {_first_line(exc)})"


def _xformers_ops(device: torch.device) -> Any:
    """``xformers.ops`` ready for ``device``, or a ``RuntimeError`` with the reason and fix."""
    reason = xformers_unavailable_reason(device)
    if reason is not None:
        raise RuntimeError(
            f"attention backend 'xformers' is unavailable: {reason}. Use attention='sdpa' "
            "(torch's scaled_dot_product_attention, the default)."
        )
    return _load_xformers()[0]


# --------------------------------------------------------------------------------------------
# The backend switch


def _aligned_bias(mask: Tensor, shape: tuple[int, int, int, int], like: Tensor) -> Tensor:
    """``mask`` as an additive float bias ``(N, H, Tq, Tk)`` in ``like``'s dtype and device.

    A bool mask is True where attention is *allowed* (SDPA's convention); ``-inf`` elsewhere.
    The bias is allocated with its last dimension padded to a multiple of 8 and then sliced:
    xformers needs every stride but the last to be a multiple of 16 bytes.
    """
    n, h, tq, tk = shape
    padded = -(-tk // 8) * 8
    bias = torch.empty(n, h, tq, padded, dtype=like.dtype, device=like.device)[..., :tk]
    if mask.dtype == torch.bool:
        bias.zero_().masked_fill_(~mask.to(like.device).expand(shape), float("-inf"))
    else:
        bias.copy_(mask.to(like.device, like.dtype).expand(shape))
    return bias


def _xformers_bthd(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    attn_mask: Tensor | None,
    dropout_p: float,
    is_causal: bool,
) -> Tensor:
    """xformers' memory-efficient attention on ``(N, T, H, Dh)`` tensors: ``(N, Tq, H, Dh)``."""
    ops = _xformers_ops(q.device)
    bias: Any = None
    if is_causal:
        bias = ops.LowerTriangularMask()
    elif attn_mask is not None:
        n, tq, h, _ = q.shape
        bias = _aligned_bias(attn_mask, (n, h, tq, k.shape[1]), q)
    return ops.memory_efficient_attention(q, k, v, attn_bias=bias, p=dropout_p)


def attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    attn_mask: Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    backend: str = "sdpa",
) -> Tensor:
    """Scaled dot-product attention on the chosen backend.

    Args:
        q: queries ``(N, H, Tq, Dh)``.
        k: keys ``(N, H, Tk, Dh)``.
        v: values ``(N, H, Tk, Dh)``.
        attn_mask: broadcastable to ``(N, H, Tq, Tk)``; bool: True where attention is
            *allowed* (SDPA's convention, the opposite of ``nn.MultiheadAttention``), or an
            additive float bias.
        dropout_p: dropout probability on the attention weights (applied whenever > 0: pass
            0 in eval mode).
        is_causal: a top-left-aligned causal mask (not together with ``attn_mask``).
        backend: ``"sdpa"`` (:func:`torch.nn.functional.scaled_dot_product_attention`) or
            ``"xformers"`` (``xformers.ops.memory_efficient_attention``, CUDA only).

    Returns:
        ``(N, H, Tq, Dh)``.

    Raises:
        ValueError: an unknown backend, bad shapes, or ``attn_mask`` with ``is_causal``.
        RuntimeError: ``backend="xformers"`` where xformers cannot run (the reason and the fix,
            ``attention='sdpa'``).
    """
    check_backend(backend)
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ValueError(
            "attention: q, k, v must be (N, H, T, Dh), got "
            f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    if is_causal and attn_mask is not None:
        raise ValueError("attention: pass either attn_mask or is_causal=True, not both")
    if backend == "sdpa":
        return F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal
        )
    out = _xformers_bthd(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask, dropout_p, is_causal
    )
    return out.transpose(1, 2)


# --------------------------------------------------------------------------------------------
# A multi-head self-attention module on a backend


def _additive(mask: Tensor, dtype: torch.dtype, name: str) -> Tensor:
    """A bool mask (True = *not* allowed, ``nn.MultiheadAttention``'s convention) or a float
    mask as an additive float mask."""
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill_(
            mask, float("-inf")
        )
    if not mask.is_floating_point():
        raise ValueError(f"MultiheadSelfAttention: {name} must be bool or float, got {mask.dtype}")
    return mask.to(dtype)


class MultiheadSelfAttention(nn.Module):
    """Multi-head self-attention on a chosen backend: a drop-in for ``nn.MultiheadAttention``.

    The parameters are ``nn.MultiheadAttention``'s, with the same names, shapes and
    initialisation: ``in_proj_weight`` ``(3E, E)``, ``in_proj_bias`` ``(3E,)`` (or None with
    ``bias=False``) and ``out_proj`` (a linear layer ``E → E``), so state dicts load both
    ways. The call is also its own::

        out, weights = attn(x, x, x, key_padding_mask=..., attn_mask=..., need_weights=False)

    with ``weights`` always None: weights are never materialised, so ``need_weights=True`` is
    refused. Self-attention only (``query is key is value``, or three tensors of one shape:
    each is projected with its own slice of ``in_proj_weight``); no ``kdim``/``vdim``,
    ``add_bias_kv`` or ``add_zero_attn``.

    Masks (as ``nn.MultiheadAttention``): ``key_padding_mask`` ``(N, Tk)``, bool with True =
    ignore that key, or an additive float; ``attn_mask`` ``(Tq, Tk)`` or ``(N*H, Tq, Tk)``,
    bool with True = *not* allowed, or an additive float. Both are combined into one additive
    mask for the backend. ``is_causal=True`` is a hint that ``attn_mask`` is the causal mask
    (as in torch: without a ``key_padding_mask`` the backend's causal kernel is used and
    ``attn_mask`` ignored); unlike torch it may also come without ``attn_mask``.

    Dropout on the attention weights applies in training mode only.

    Args:
        embed_dim: E, the model width.
        num_heads: H (E must be divisible by it).
        dropout: dropout probability on the attention weights.
        bias: input and output projection biases.
        batch_first: inputs ``(N, T, E)`` (True) or ``(T, N, E)``.
        backend: one of :data:`BACKENDS`.
        device, dtype: of the parameters.

    Shapes: ``query``/``key``/``value`` ``(N, T, E)`` (``(T, N, E)`` with
    ``batch_first=False``, or unbatched ``(T, E)``); output the same shape.
    """

    # Tells torch's TransformerEncoderLayer / TransformerEncoder (and nn.MultiheadAttention's
    # own checks) that their fused inference fast path (torch._transformer_encoder_layer_fwd,
    # nested tensors) cannot be used: that path reads in_proj_weight directly and would bypass
    # this module, and so the chosen backend, in eval mode.
    _qkv_same_embed_dim = False

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        *,
        batch_first: bool = True,
        backend: str = "sdpa",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if embed_dim < 1 or num_heads < 1 or embed_dim % num_heads:
            raise ValueError(
                f"MultiheadSelfAttention: embed_dim ({embed_dim}) must be a positive multiple "
                f"of num_heads ({num_heads})"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"MultiheadSelfAttention: dropout must lie in [0, 1), got {dropout}")
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        self.embed_dim = self.kdim = self.vdim = int(embed_dim)
        self.num_heads = int(num_heads)
        self.head_dim = self.embed_dim // self.num_heads
        self.dropout = float(dropout)
        self.batch_first = bool(batch_first)
        self.bias_k = self.bias_v = None
        self.add_zero_attn = False
        self.backend = backend
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim, **factory))
        if bias:
            self.in_proj_bias = nn.Parameter(torch.empty(3 * embed_dim, **factory))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(embed_dim, embed_dim, bias=bias, **factory)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        # nn.MultiheadAttention's initialisation.
        if self.in_proj_weight.is_meta:
            return
        nn.init.xavier_uniform_(self.in_proj_weight)
        if self.in_proj_bias is not None:
            nn.init.zeros_(self.in_proj_bias)
            nn.init.zeros_(self.out_proj.bias)

    @property
    def backend(self) -> str:
        """The attention backend (settable; validated)."""
        return self._backend

    @backend.setter
    def backend(self, value: str) -> None:
        self._backend = check_backend(value, "MultiheadSelfAttention")

    @classmethod
    def from_multihead_attention(
        cls, mha: nn.MultiheadAttention, backend: str = "sdpa"
    ) -> MultiheadSelfAttention:
        """A module sharing ``mha``'s parameters (the same ``Parameter`` objects and
        ``out_proj`` module: an optimizer holding them keeps working)."""
        reasons = []
        if not mha._qkv_same_embed_dim:
            reasons.append("kdim/vdim differ from embed_dim")
        if mha.bias_k is not None or mha.bias_v is not None:
            reasons.append("add_bias_kv=True")
        if mha.add_zero_attn:
            reasons.append("add_zero_attn=True")
        if reasons:
            raise ValueError(
                "MultiheadSelfAttention: cannot replace this nn.MultiheadAttention ("
                + ", ".join(reasons)
                + "); only plain self-attention is supported"
            )
        new = cls(
            mha.embed_dim,
            mha.num_heads,
            mha.dropout,
            bias=mha.in_proj_bias is not None,
            batch_first=mha.batch_first,
            backend=backend,
            device="meta",
        )
        new.in_proj_weight = mha.in_proj_weight
        new.in_proj_bias = mha.in_proj_bias
        new.out_proj = mha.out_proj
        new.train(mha.training)
        return new

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Tensor | None = None,
        need_weights: bool = False,
        attn_mask: Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[Tensor, None]:
        """Self-attention of ``query`` (see the class docstring for shapes and masks).

        Returns:
            ``(out, None)``, ``out`` shaped like ``query``.
        """
        if need_weights:
            raise ValueError(
                "MultiheadSelfAttention: need_weights=True is not supported (attention weights "
                "are never materialised); call it with need_weights=False"
            )
        same = query is key and key is value
        if not same and not (query.shape == key.shape == value.shape):
            raise ValueError(
                "MultiheadSelfAttention: self-attention only: query, key and value must be the "
                "same tensor or have one shape, got "
                f"{tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}"
            )
        if query.dim() not in (2, 3) or query.shape[-1] != self.embed_dim:
            raise ValueError(
                f"MultiheadSelfAttention: expects (N, T, {self.embed_dim}) inputs "
                f"(or unbatched (T, {self.embed_dim})), got {tuple(query.shape)}"
            )
        unbatched = query.dim() == 2
        if unbatched:
            query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif not self.batch_first:
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        n, t, e = query.shape
        h, dh = self.num_heads, self.head_dim

        if same:
            qkv = F.linear(query, self.in_proj_weight, self.in_proj_bias)
        else:
            weights = self.in_proj_weight.chunk(3)
            biases = self.in_proj_bias.chunk(3) if self.in_proj_bias is not None else [None] * 3
            qkv = torch.cat(
                [F.linear(x, w, b) for x, w, b in zip((query, key, value), weights, biases)],
                dim=-1,
            )
        qkv = qkv.view(n, t, 3, h, dh)
        mask, causal = self._mask(key_padding_mask, attn_mask, is_causal, n, t, qkv.dtype)
        dropout_p = self.dropout if self.training else 0.0
        if self.backend == "xformers":
            q, k, v = qkv.unbind(2)  # (N, T, H, Dh) each
            out = _xformers_bthd(q, k, v, mask, dropout_p, causal).reshape(n, t, e)
        else:
            q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # (N, H, T, Dh) each
            out = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, dropout_p=dropout_p, is_causal=causal
            )
            out = out.transpose(1, 2).reshape(n, t, e)
        out = self.out_proj(out)
        if unbatched:
            out = out.squeeze(0)
        elif not self.batch_first:
            out = out.transpose(0, 1)
        return out, None

    def _mask(
        self,
        key_padding_mask: Tensor | None,
        attn_mask: Tensor | None,
        is_causal: bool,
        n: int,
        t: int,
        dtype: torch.dtype,
    ) -> tuple[Tensor | None, bool]:
        """One additive mask broadcastable to ``(N, H, T, T)`` (or None) and whether the
        backend's causal kernel is to be used instead."""
        if is_causal and key_padding_mask is None:
            return None, True  # torch: attn_mask is the causal mask, the hint wins
        if is_causal and attn_mask is None:
            attn_mask = torch.ones(t, t, dtype=torch.bool, device=key_padding_mask.device).triu(1)
        mask = None
        if attn_mask is not None:
            if attn_mask.dim() == 2 and attn_mask.shape == (t, t):
                mask = _additive(attn_mask, dtype, "attn_mask")[None, None]
            elif attn_mask.dim() == 3 and attn_mask.shape == (n * self.num_heads, t, t):
                mask = _additive(attn_mask, dtype, "attn_mask").view(n, self.num_heads, t, t)
            else:
                raise ValueError(
                    f"MultiheadSelfAttention: attn_mask must be ({t}, {t}) or "
                    f"({n * self.num_heads}, {t}, {t}) (N*H, Tq, Tk), got "
                    f"{tuple(attn_mask.shape)}"
                )
        if key_padding_mask is not None:
            if key_padding_mask.shape != (n, t):
                raise ValueError(
                    f"MultiheadSelfAttention: key_padding_mask must be ({n}, {t}) (N, Tk), "
                    f"got {tuple(key_padding_mask.shape)}"
                )
            pad = _additive(key_padding_mask, dtype, "key_padding_mask")[:, None, None, :]
            mask = pad if mask is None else mask + pad
        return mask, False

    def extra_repr(self) -> str:
        return (
            f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}, "
            f"bias={self.in_proj_bias is not None}, batch_first={self.batch_first}, "
            f"backend={self.backend!r}"
        )


def use_attention_backend(module: nn.Module, backend: str) -> int:
    """Run every self-attention of ``module`` on ``backend``, in place.

    Each ``nn.MultiheadAttention`` inside ``module`` is replaced by a
    :class:`MultiheadSelfAttention` that shares its parameters (same names, so the state dict
    keys do not change; same ``Parameter`` objects, so an optimizer keeps working); an
    existing :class:`MultiheadSelfAttention` gets its ``backend`` set. ``"sdpa"`` swaps too
    (uniform behaviour, and a way back from ``"xformers"``): the outputs equal the original
    module's, but torch's fused eval-mode fast path of ``nn.TransformerEncoderLayer`` (which
    reads the weights directly and would bypass the backend) is then off, and so is
    ``nn.TransformerEncoder``'s nested-tensor path (its padded positions, zeros on that path,
    then hold computed values).

    Args:
        module: any model (``module`` itself may not be an ``nn.MultiheadAttention``: there
            is no parent to put the replacement in).
        backend: one of :data:`BACKENDS`.

    Returns:
        How many attention modules now run on ``backend``.

    Raises:
        ValueError: an unknown backend, ``"xformers"`` where it cannot run (no CUDA device,
            no xformers), or an ``nn.MultiheadAttention`` that is not plain self-attention
            (``kdim``/``vdim``, ``add_bias_kv``, ``add_zero_attn``).
    """
    check_backend(backend, "use_attention_backend")
    if isinstance(module, nn.MultiheadAttention):
        raise ValueError(
            "use_attention_backend: pass the model that contains the nn.MultiheadAttention "
            "(or build MultiheadSelfAttention.from_multihead_attention(mha, backend))"
        )
    if backend == "xformers":
        reason = xformers_unavailable_reason()
        if reason is not None:
            raise ValueError(
                f"use_attention_backend: attention backend 'xformers' is unavailable: {reason}. "
                "Use attention='sdpa' (torch's scaled_dot_product_attention, the default)."
            )
    count = 0
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, MultiheadSelfAttention):
                child.backend = backend
                count += 1
            elif isinstance(child, nn.MultiheadAttention):
                setattr(
                    parent, name, MultiheadSelfAttention.from_multihead_attention(child, backend)
                )
                count += 1
    for sub in module.modules():
        if isinstance(sub, nn.TransformerEncoder) and any(
            isinstance(getattr(layer, "self_attn", None), MultiheadSelfAttention)
            for layer in sub.layers
        ):
            sub.use_nested_tensor = False
    return count
