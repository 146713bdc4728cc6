"""Reading a network's intermediate outputs: :class:`FeatureTap`, a forward hook on named
submodules that lives for one call only, and :func:`pool_features`.

A tap registers its hooks when it runs and removes them when the call ends, also when the
call raises, so a model (a student, its EMA copy, a frozen teacher) never keeps a hook
between calls::

    tap = FeatureTap(unet, ["mid_block", "up_blocks.0"], pool="gap")
    feats = tap(lambda: unet(x_t, t))  # {"mid_block": (N, 64), "up_blocks.0": (N, 64)}
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from manyview.options import check_choice

__all__ = ["POOLS", "FeatureTap", "block_names", "pool_features", "resolve_module"]

POOLS = ("auto", "gap", "mean_tokens", "cls", "none")
"""How a tap reduces a block's output: ``gap`` averages a feature map (N, C, H, W) over
(H, W); ``mean_tokens`` averages tokens (N, L, D) over L; ``cls`` keeps token 0; ``none``
keeps the output; ``auto`` is ``gap`` for 4-d and ``mean_tokens`` for 3-d outputs."""


def pool_features(h: Tensor, pool: str = "auto", *, who: str = "pool_features") -> Tensor:
    """``h`` reduced by ``pool`` (one of :data:`POOLS`)."""
    if pool == "none":
        return h
    if pool == "auto":
        pool = {4: "gap", 3: "mean_tokens"}.get(h.dim(), "")
        if not pool:
            if h.dim() == 2:
                return h
            raise ValueError(
                f"{who}: cannot pool an output of shape {tuple(h.shape)}: expected a feature "
                "map (N, C, H, W) or tokens (N, L, D)"
            )
    want = {"gap": 4, "mean_tokens": 3, "cls": 3}[pool]
    if h.dim() != want:
        layout = "(N, C, H, W)" if want == 4 else "(N, L, D)"
        raise ValueError(
            f"{who}: pool={pool!r} expects {layout}, the block gives {tuple(h.shape)}; "
            "use pool='auto'"
        )
    if pool == "gap":
        return h.mean(dim=(2, 3))
    return h.mean(dim=1) if pool == "mean_tokens" else h[:, 0]


def block_names(model: nn.Module) -> list[str]:
    """The model's top-level blocks, with the members of each ``ModuleList`` numbered
    (``down_blocks.0``, ..., ``mid_block``, ``up_blocks.1``): the names an error lists."""
    names: list[str] = []
    for name, child in model.named_children():
        if isinstance(child, nn.ModuleList):
            names.extend(f"{name}.{i}" for i in range(len(child)))
        else:
            names.append(name)
    return names


def resolve_module(model: nn.Module, name: str, *, who: str) -> nn.Module:
    """The submodule ``name`` (a dotted path such as ``up_blocks.0`` or
    ``transformer_blocks.1.attn1``), or a one-line ``ValueError`` listing the valid blocks."""
    modules = dict(model.named_modules())
    if not isinstance(name, str) or not name or name not in modules:
        from manyview import did_you_mean

        valid = block_names(model)
        raise ValueError(
            f"{who}: block {name!r} is not a module of {type(model).__name__}"
            f"{did_you_mean(str(name), valid) or ''}; valid blocks: {', '.join(valid)} "
            "(or any dotted submodule path of them)"
        )
    return modules[name]


class _Stop(Exception):
    """Raised by a tap's hook once every target is captured, to skip the rest of the
    forward pass (caught by the tap)."""


class FeatureTap:
    """Forward hooks on ``targets`` of ``model`` for one call: ``tap(run)`` calls ``run()``
    and returns ``{target: pooled output}``.

    Args:
        model: the network whose submodules are tapped.
        targets: one dotted submodule name or several (see :func:`resolve_module`).
        pool: one of :data:`POOLS` (default ``"auto"``).
        normalize: L2-normalise each pooled feature.
        detach: detach the features (no gradient into the network).
        stop: end the forward pass as soon as every target is captured (the rest of the
            network is not computed; ``run()``'s result is then not available).

    A block that returns a tuple (a diffusers down block returns its output and the skip
    connections) is read at its first element. Hooks are removed when ``tap`` returns or
    raises.
    """

    def __init__(
        self,
        model: nn.Module,
        targets: str | Sequence[str],
        *,
        pool: str = "auto",
        normalize: bool = False,
        detach: bool = False,
        stop: bool = False,
        who: str = "FeatureTap",
    ) -> None:
        self.who = who
        self.pool = check_choice(pool, POOLS, "pool", who)
        names = [targets] if isinstance(targets, str) else list(targets)
        if not names:
            raise ValueError(f"{who}: give at least one block to tap")
        self.modules = {name: resolve_module(model, name, who=who) for name in names}
        self.normalize = bool(normalize)
        self.detach = bool(detach)
        self.stop = bool(stop)

    def __call__(self, run: Callable[[], Any]) -> dict[str, Tensor]:
        captured: dict[str, Tensor] = {}

        def hook_for(name: str) -> Callable[..., None]:
            def hook(module: nn.Module, args: Any, output: Any) -> None:
                out = output[0] if isinstance(output, tuple) else output
                if not isinstance(out, Tensor):  # e.g. a diffusers output dataclass
                    out = out[0]
                captured.setdefault(name, out)
                if self.stop and len(captured) == len(self.modules):
                    raise _Stop

            return hook

        handles = [m.register_forward_hook(hook_for(n)) for n, m in self.modules.items()]
        try:
            run()
        except _Stop:
            pass
        finally:
            for handle in handles:
                handle.remove()
        missing = [n for n in self.modules if n not in captured]
        if missing:
            raise ValueError(f"{self.who}: the forward pass never ran block(s) {missing}")
        feats = {}
        for name in self.modules:
            f = pool_features(captured[name], self.pool, who=self.who)
            if self.normalize:
                f = F.normalize(f, dim=-1)
            feats[name] = f.detach() if self.detach else f
        return feats
