"""The attention backend of a diffusers network, through diffusers' own switch.

``"sdpa"`` is diffusers' default processor (``AttnProcessor2_0``: torch's
``scaled_dot_product_attention``); ``"xformers"`` is
``enable_xformers_memory_efficient_attention()`` (xformers' memory-efficient attention,
CUDA only). xformers is never a dependency. Where diffusers refuses it, the reason becomes
one line: xformers is not installed (diffusers raises ``ModuleNotFoundError``), no CUDA
device (``ValueError``), or the installed xformers does not run under this torch (its
probe call fails; e.g. a wheel built for another torch/CUDA, which has no kernels here and
no CPU path). The detail comes from
:func:`manyview.encoders.attention.xformers_unavailable_reason`.
"""

from __future__ import annotations

from torch import nn

from manyview.encoders.attention import BACKENDS, check_backend, xformers_unavailable_reason
from manyview_diffusion.networks import is_diffusers_model, unwrap_network

__all__ = ["BACKENDS", "attention_backend", "set_attention"]

_FIX = 'use attention = "sdpa" (torch\'s scaled_dot_product_attention, the default)'


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _processors(network: nn.Module) -> list[object]:
    return [m.processor for m in network.modules() if hasattr(m, "processor")]


def attention_backend(network: nn.Module) -> str:
    """``"xformers"`` when any attention layer of the diffusers model in ``network`` runs an
    xformers processor, else ``"sdpa"``."""
    base = unwrap_network(network)
    names = (type(p).__name__ for p in _processors(base))
    return "xformers" if any("XFormers" in name for name in names) else "sdpa"


def set_attention(network: nn.Module, backend: str, *, who: str = "attention") -> nn.Module:
    """Run the attention layers of ``network`` (a diffusers model, or a wrapper of one: a
    DDAE encoder, :class:`~manyview_diffusion.selfcond.SelfConditioned`, ...) on
    ``backend``, in place; returns ``network``.

    ``"sdpa"`` undoes an earlier ``"xformers"`` (``disable_xformers_memory_efficient_
    attention``) and otherwise changes nothing. ``"xformers"`` calls diffusers'
    ``enable_xformers_memory_efficient_attention()``.

    Raises:
        ValueError: one line, for an unknown backend (with a suggestion), a module that is
            not a diffusers model, and each reason xformers cannot be used, with the fix.
    """
    backend = check_backend(backend, who)
    base = unwrap_network(network)
    if not is_diffusers_model(base):
        raise ValueError(
            f"{who}: set_attention needs a diffusers model (or a wrapper of one), got "
            f"{type(network).__name__}"
        )
    if backend == "sdpa":
        if attention_backend(base) == "xformers":
            base.disable_xformers_memory_efficient_attention()
        return network
    head = f"{who}: attention 'xformers' is unavailable"
    try:
        base.enable_xformers_memory_efficient_attention()
    except ModuleNotFoundError as error:
        if error.name is not None and error.name.split(".")[0] != "xformers":
            raise ValueError(f"{head}: {_first_line(error)}; {_FIX}") from None
        raise ValueError(
            f"{head}: xformers is not installed (pip install xformers, a wheel built for "
            f"this torch and CUDA); or {_FIX}"
        ) from None
    except ValueError as error:
        if "cuda" not in str(error).lower():
            raise ValueError(
                f"{head}: diffusers refuses it: {_first_line(error)}; {_FIX}"
            ) from None
        raise ValueError(
            f"{head}: it runs on CUDA only and no CUDA device is available; {_FIX}"
        ) from None
    except Exception as error:  # xformers imported, its probe call failed
        reason = xformers_unavailable_reason("cuda")
        detail = f"{type(error).__name__}: {_first_line(error)}"
        if reason is not None and "not installed" not in reason:
            detail = reason
        raise ValueError(
            f"{head}: the installed xformers does not run under this torch ({detail}); "
            f"install an xformers wheel built for it, or {_FIX}"
        ) from None
    return network
