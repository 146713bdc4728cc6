"""Several losses with names and weights as one module (pytorch-metric-learning's
``MultipleLosses`` is the model): the one place where a recipe's loss terms are built from
``[[losses]]``, given their inputs, weighted and summed.

What a loss takes is declared on its class (``docs/architecture.md``, "Loss inputs"):

- ``takes``: ``"views"`` — the embeddings ``(N, M, D)`` of M views
  (:class:`manyview.losses.MultiViewLoss`), or ``"student"`` — a student output against
  teacher ``targets`` (:class:`manyview.distill.DistillationLoss`);
- ``needs``: keyword inputs it cannot do without (``"labels"``, ``"index"``, ``"targets"``);
- ``inputs``: keyword inputs it uses when they are there (SupCon's ``labels``);
- ``from_context``: constructor arguments the recipe fills in (:mod:`manyview.context`).

A recipe calls the losses with every input it has (``labels`` and ``index`` from the batch,
``targets`` from a teacher, see :func:`manyview.recipes.batch_inputs`); each loss gets only
the ones it declares.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from manyview.config import ConfigError
from manyview.context import build

__all__ = ["WeightedLosses", "loss_contract"]

LossFn = Callable[[nn.Module, dict[str, Any]], Tensor]


def loss_contract(loss: Any) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """``(takes, needs, inputs)`` of a loss, from its class attributes (defaults for a loss
    that declares none: ``("views", (), ())``); ``inputs`` includes ``needs``."""
    takes = getattr(loss, "takes", "views")
    needs = tuple(getattr(loss, "needs", ()))
    optional = tuple(getattr(loss, "inputs", ()))
    return takes, needs, tuple(dict.fromkeys((*needs, *optional)))


def _unique(names: Sequence[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return out


class WeightedLosses(nn.Module):
    """A weighted sum of named losses: ``total = Σ_k w_k · L_k``.

    Args:
        losses: a mapping name -> loss module, or a sequence of loss modules (named after
            their class; repeated names get ``_2``, ``_3`` ...).
        weights: one weight per loss (a sequence in the same order or a mapping by name);
            default 1 each.

    Calling it as ``losses(x, **inputs)`` gives every loss ``x`` and the inputs it declares
    and returns ``(total, components)``: the weighted total (0-dim, with gradients) and each
    loss's unweighted, detached value by name. :meth:`apply` does the same when the losses
    need different first arguments.
    """

    def __init__(
        self,
        losses: Mapping[str, nn.Module] | Sequence[nn.Module],
        weights: Mapping[str, float] | Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        if isinstance(losses, Mapping):
            names, modules = list(losses), list(losses.values())
        else:
            modules = list(losses)
            names = _unique([type(m).__name__.lower() for m in modules])
        if not modules:
            raise ValueError("WeightedLosses: give at least one loss")
        for name, module in zip(names, modules, strict=True):
            if not isinstance(module, nn.Module):
                raise ValueError(
                    f"WeightedLosses: loss {name!r} is a {type(module).__name__}, not an nn.Module"
                )
        if weights is None:
            values = [1.0] * len(modules)
        elif isinstance(weights, Mapping):
            unknown = sorted(set(weights) - set(names))
            if unknown:
                raise ValueError(f"WeightedLosses: weights for unknown losses {unknown}")
            values = [float(weights.get(n, 1.0)) for n in names]
        else:
            values = [float(w) for w in weights]
            if len(values) != len(modules):
                raise ValueError(f"WeightedLosses: {len(values)} weights for {len(modules)} losses")
        self.losses = nn.ModuleDict(dict(zip(names, modules, strict=True)))
        self.weights = dict(zip(names, values, strict=True))

    @classmethod
    def from_config(
        cls,
        specs: Sequence[Mapping[str, Any]],
        *,
        context: Mapping[str, Any] | None = None,
        takes: str = "views",
        provides: Sequence[str] = ("labels", "index"),
        who: str = "this recipe",
    ) -> WeightedLosses:
        """Build the ``[[losses]]`` tables (``name``, ``weight``, ``options``) with the
        context's ``from_context`` arguments; every problem is a one-line ConfigError naming
        the table.

        Args:
            takes: what the recipe gives every loss: ``"views"`` or ``"student"``.
            provides: the keyword inputs the recipe can give (a loss that needs another is
                refused here, not at the first step).
            who: the recipe, for the messages.
        """
        modules, weights, names = [], [], []
        for i, spec in enumerate(specs):
            where = f"[[losses]] #{i + 1} ({spec['name']})"
            try:
                loss = build("loss", spec["name"], spec.get("options", {}), context)
            except (LookupError, TypeError, ValueError) as exc:
                raise ConfigError(f"{where}: {exc}") from None
            kind, needs, _ = loss_contract(loss)
            if kind != takes:
                other = {"views": "embeddings of M views", "student": "a student and targets"}
                raise ConfigError(
                    f"{where} takes {other.get(kind, kind)}, but {who} gives its losses "
                    f"{other.get(takes, takes)}; pick a loss of that kind (manyview list loss)"
                )
            missing = [n for n in needs if n not in provides]
            if missing:
                raise ConfigError(
                    f"{where} needs `{'`, `'.join(missing)}`, which {who} does not provide "
                    f"(it gives: {', '.join(provides) or 'nothing'})"
                )
            modules.append(loss)
            weights.append(float(spec.get("weight", 1.0)))
            names.append(spec["name"])
        if not modules:
            raise ConfigError(
                f'{who} needs at least one [[losses]] table with name = "<loss>" '
                "(manyview list loss)"
            )
        return cls(dict(zip(_unique(names), modules, strict=True)), weights)

    def check_views(self, m: int, hint: str = "change num_views or use 'pwe'") -> None:
        """Refuse (ConfigError) a loss whose ``min_views``/``max_views`` exclude M = ``m``."""
        for i, (name, loss, _) in enumerate(self.items()):
            lo, hi = getattr(loss, "min_views", 1), getattr(loss, "max_views", None)
            if m < lo or (hi is not None and m > hi):
                raise ConfigError(
                    f"[[losses]] #{i + 1} ({name}) takes {lo}..{hi or 'any'} views, but the "
                    f"recipe gives M = {m}; {hint}"
                )

    def items(self) -> Iterator[tuple[str, nn.Module, float]]:
        """``(name, loss, weight)`` in order."""
        for name, loss in self.losses.items():
            yield name, loss, self.weights[name]

    def inputs_for(self, name: str, available: Mapping[str, Any]) -> dict[str, Any]:
        """The keyword inputs loss ``name`` declares, taken from ``available``; a needed one
        that is missing raises ValueError naming it."""
        _, needs, wanted = loss_contract(self.losses[name])
        missing = [n for n in needs if n not in available]
        if missing:
            raise ValueError(
                f"loss {name!r} needs `{'`, `'.join(missing)}=`, which this batch does not have "
                f"(it has {', '.join(sorted(available)) or 'no inputs'})"
            )
        return {k: available[k] for k in wanted if k in available}

    def apply(self, fn: LossFn, /, **available: Any) -> tuple[Tensor, dict[str, Tensor]]:
        """``fn(loss, inputs)`` for every loss, with its declared ``inputs`` from
        ``available``; the weighted total and the detached values by name."""
        total: Tensor | None = None
        components: dict[str, Tensor] = {}
        for name, loss, weight in self.items():
            value = fn(loss, self.inputs_for(name, available))
            components[name] = value.detach()
            total = weight * value if total is None else total + weight * value
        assert total is not None  # at least one loss (checked in __init__)
        return total, components

    def forward(self, x: Any, /, **available: Any) -> tuple[Tensor, dict[str, Tensor]]:
        """Every loss on ``x`` with its declared inputs; ``(total, components)``."""
        return self.apply(lambda loss, inputs: loss(x, **inputs), **available)

    def extra_repr(self) -> str:
        return ", ".join(f"{n}={w:g}" for n, w in self.weights.items())
