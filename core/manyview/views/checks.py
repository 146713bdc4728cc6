"""The checks every view's call shares: ``generator`` must be a ``torch.Generator`` (or
``None``) and the input must hold values (not be on the ``meta`` device).

The core's views call :func:`check_view_call` first; ``manyview.create("view", ...)`` also
adds :func:`view_call_hook` as a forward pre-hook to every view module it builds, so a
plugin's view gets the same one-line errors (``generator=42`` would otherwise fail deep
inside torch)."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from manyview.losses.base import check_device, check_generator

__all__ = ["add_view_checks", "check_view_call", "view_call_hook"]


def check_view_call(x: Any, generator: Any, who: str) -> None:
    """Refuse a ``generator`` that is not a ``torch.Generator`` or ``None``, and an input
    tensor on the ``meta`` device, with one-line ValueErrors naming ``who``."""
    check_generator(generator, who)
    if isinstance(x, Tensor):
        check_device(x, who, "the inputs")


def view_call_hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """A forward pre-hook (``with_kwargs=True``) running :func:`check_view_call`."""
    check_view_call(args[0] if args else None, kwargs.get("generator"), type(module).__name__)


def add_view_checks(view: Any) -> Any:
    """``view`` with :func:`view_call_hook` as a forward pre-hook (once) when it is an
    ``nn.Module``; anything else is returned as it is."""
    if isinstance(view, nn.Module) and view_call_hook not in view._forward_pre_hooks.values():
        view.register_forward_pre_hook(view_call_hook, with_kwargs=True)
    return view
