"""Pairwise aggregation (PWE) of a two-view loss over M views, the baseline of Koromilas et
al. 2025, "A Principled Framework for Multi-View Contrastive Learning"."""

from __future__ import annotations

import inspect
from itertools import combinations
from typing import Any

import torch
from torch import Tensor, nn

from manyview.losses.base import MultiViewLoss
from manyview.losses.engine import EngineConfig, EngineOption
from manyview.registry import did_you_mean


class PairwiseLoss(MultiViewLoss):
    """Mean of a two-view loss over all C(M, 2) view pairs.

    Args:
        base: a registered loss name (default ``"manyview:infonce"``, the built-in InfoNCE
            whatever other plugins register) or a loss module taking 2 views.
        normalize: L2-normalise the views first (the base then skips it).
        engine: ``"auto"`` (default), ``"dense"``, ``"tiled"`` or an
            :class:`~manyview.losses.engine.EngineConfig`, passed to a base loss built by
            name that has the option (each pair's 2N x 2N logits decide ``"auto"``, see
            :mod:`manyview.losses.engine`); a base module keeps its own.
        **base_kwargs: passed to the base loss, e.g. ``temperature=0.5``.

    Inputs: ``views`` (N, M, D) or M tensors (N, D); ``labels``/``index`` are passed on.
    Output: a 0-dim tensor.

    Under torch.distributed the loss falls back to the ``"full"`` gather mode (see
    :class:`~manyview.losses.base.MultiViewLoss`): it gathers once and every rank computes
    each pair's loss on the global batch (the base loss does not gather again).
    """

    def __init__(
        self,
        base: str | nn.Module = "manyview:infonce",
        *,
        normalize: bool = True,
        engine: EngineOption = "auto",
        **base_kwargs: Any,
    ) -> None:
        super().__init__(normalize=normalize)
        self.engine = EngineConfig.parse(engine, "pwe")
        default = self.engine == EngineConfig()
        if isinstance(base, str):
            import manyview

            factory = manyview.entry("loss", base).load()
            params = inspect.signature(factory).parameters
            if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
                own = ("base", "normalize", "engine")
                for key in base_kwargs:
                    if key not in params:
                        raise TypeError(
                            f"pwe: unknown option {key!r}"
                            f"{did_you_mean(key, [*own, *params]) or '.'} pwe takes "
                            f"{', '.join(own)} and the options of its base loss {base!r}: "
                            f"{', '.join(params) or 'none'}"
                        )
            if "normalize" in params:
                base_kwargs.setdefault("normalize", False)
            if "engine" in params:
                base_kwargs["engine"] = self.engine
            elif not default:
                raise ValueError(f"pwe: the base loss {base!r} has no engine option")
            base = manyview.create("loss", base, **base_kwargs)
        elif base_kwargs:
            raise ValueError("pwe: pass base_kwargs only with a base loss name")
        elif not default:
            raise ValueError("pwe: with a base loss module, set engine= on that module")
        self.base = base
        self.needs = tuple(getattr(base, "needs", ()))
        self.inputs = tuple(getattr(base, "inputs", ()))
        self.label_kind = getattr(base, "label_kind", "class")

    @property
    def temperature(self) -> float | None:
        return getattr(self.base, "temperature", None)

    def compute(self, z: Tensor, **kwargs: Any) -> Tensor:
        m = z.shape[1]
        terms = [self.base(z[:, [a, b]], **kwargs) for a, b in combinations(range(m), 2)]
        return torch.stack(terms).mean()
