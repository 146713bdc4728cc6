"""Step strategies: how the trainer turns one batch into gradients.

The trainer picks one from the configuration (``docs/architecture.md``, "Step strategies"):

- :class:`PlainStep` — ``recipe.step(batch, generator)``, then ``backward()``;
- :class:`DDPStep` — the same step through ``DistributedDataParallel`` under ``torchrun``,
  which all-reduces the gradients during ``backward()``;
- :class:`GradCacheStep` — ``[run] gradcache_chunk = K`` with any
  :class:`~manyview.recipes.EmbedRecipe`: the views are drawn once, the recipe's
  ``embed_views`` runs on chunks of K instances without and then with gradients, and its
  ``objective`` once on the whole batch (GradCache, Gao et al. 2021), so the gradients are
  the full batch's with one chunk's encoder activations. Under ``torchrun`` the model is
  not wrapped in DDP: every rank starts from rank 0's model, rank 0's buffers are copied
  to every rank before each forward (as DDP does), and the gradients are averaged by hand.

Each strategy's :meth:`~StepStrategy.run` returns the step's output with the gradients in
``.grad``, or ``None`` when the embeddings or the loss were not finite on some rank
(nothing was backpropagated on any rank; :attr:`StepStrategy.skipped` says which). The
embeddings of an :class:`~manyview.recipes.EmbedRecipe` are checked before its objective
runs, so a diverging encoder is a skipped step, never an error from inside a loss. Every
rank takes part in each check (the flag is reduced across ranks), so no rank waits for
another that skipped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from manyview import distributed
from manyview.config import ConfigError
from manyview.recipes.base import EmbedRecipe, Recipe, StepOutput

__all__ = [
    "DDPStep",
    "GradCacheStep",
    "PlainStep",
    "StepStrategy",
    "checked_step",
    "finite_on_all_ranks",
    "make_strategy",
]


class StepStrategy:
    """Base class: one batch to gradients. ``scale`` multiplies the loss before backward
    (``1 / grad_accum``)."""

    name = "plain"

    def __init__(self, recipe: Recipe) -> None:
        self.recipe = recipe
        #: what was not finite in the last skipped step: "embeddings" or "loss"
        self.skipped: str | None = None

    def run(
        self, batch: Mapping[str, Any], generator: torch.Generator, scale: float
    ) -> StepOutput | None:
        raise NotImplementedError

    def before_optimizer_step(self) -> None:
        """Called once per optimizer step, after every accumulated ``run``."""

    def _backward(self, out: StepOutput | None, scale: float) -> StepOutput | None:
        if out is None:  # the embeddings were not finite (on some rank)
            self.skipped = "embeddings"
            return None
        loss = out.loss * scale
        # every rank must agree, or DDP's gradient all-reduce would wait forever
        if not distributed.all_ranks_true(bool(torch.isfinite(loss))):
            self.skipped = "loss"
            return None
        self.skipped = None
        loss.backward()
        return out


def finite_on_all_ranks(z: Tensor) -> bool:
    """Whether ``z`` is finite on every rank (a collective under torchrun: every rank must
    call it at the same point of the step)."""
    return distributed.all_ranks_true(bool(torch.isfinite(z.detach()).all()))


def checked_step(
    recipe: Recipe, batch: Mapping[str, Any], generator: torch.Generator
) -> StepOutput | None:
    """The recipe's step, or ``None`` when its embeddings are not finite on some rank.

    An :class:`~manyview.recipes.EmbedRecipe` that keeps the default ``step`` runs as its
    three parts with the embeddings checked before ``objective`` (the same calls, so the
    same numbers); any other recipe's ``step`` runs as it is and its output's embeddings,
    when given, are checked after it."""
    if isinstance(recipe, EmbedRecipe) and type(recipe).step is EmbedRecipe.step:
        views = recipe.draw(batch, generator)
        z = recipe.embed_views(views)
        if not finite_on_all_ranks(z):
            return None
        out = recipe.objective(z, batch, views)
        if out.embeddings is None:
            out.embeddings = z.detach()
        return out
    out = recipe.step(batch, generator)
    if out.embeddings is not None and not finite_on_all_ranks(out.embeddings):
        return None
    return out


class PlainStep(StepStrategy):
    """``recipe.step`` (embeddings checked, :func:`checked_step`), then ``backward()``."""

    def run(
        self, batch: Mapping[str, Any], generator: torch.Generator, scale: float
    ) -> StepOutput | None:
        return self._backward(checked_step(self.recipe, batch, generator), scale)


class _StepModule(nn.Module):
    """Lets DDP wrap a recipe: ``forward`` is the recipe's step."""

    def __init__(self, recipe: nn.Module) -> None:
        super().__init__()
        self.recipe = recipe

    def forward(self, batch: Any, generator: torch.Generator) -> Any:
        return checked_step(self.recipe, batch, generator)


class DDPStep(StepStrategy):
    """The recipe's step through ``DistributedDataParallel`` (under ``torchrun``)."""

    name = "ddp"

    def __init__(self, recipe: Recipe, device: torch.device) -> None:
        super().__init__(recipe)
        self.ddp = torch.nn.parallel.DistributedDataParallel(
            _StepModule(recipe), device_ids=[device] if device.type == "cuda" else None
        )

    def run(
        self, batch: Mapping[str, Any], generator: torch.Generator, scale: float
    ) -> StepOutput | None:
        return self._backward(self.ddp(batch, generator), scale)


class _Tower(nn.Module):
    """GradCache's one "encoder": the recipe's ``embed_views`` on a dict of the M views'
    chunks, flattened to ``(n, M·D)``. Its submodule is the recipe's model (the buffers
    GradCache resets after its no-grad pass)."""

    def __init__(self, recipe: EmbedRecipe) -> None:
        super().__init__()
        self.model = recipe.model
        self._recipe = [recipe]  # not a submodule

    def forward(self, views: Mapping[str, Any]) -> Tensor:
        chunk = [views[str(i)] for i in range(len(views))]
        z = self._recipe[0].embed_views(chunk)
        if not isinstance(z, Tensor) or z.dim() != 3 or z.shape[1] != len(chunk):
            got = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
            raise ValueError(
                f"{type(self._recipe[0]).__name__}.embed_views must return (n, M, D) with M = "
                f"{len(chunk)} views, got {got}"
            )
        return z.flatten(1)


class GradCacheStep(StepStrategy):
    """GradCache over any :class:`~manyview.recipes.EmbedRecipe` (see the module docstring)."""

    name = "gradcache"

    def __init__(self, recipe: Recipe, chunk_size: int, world_size: int) -> None:
        super().__init__(recipe)
        if not isinstance(recipe, EmbedRecipe):
            raise ConfigError(
                f"[run] gradcache_chunk: the {type(recipe).__name__} recipe computes its own "
                "step (it is not split into draw / embed_views / objective), so GradCache "
                "cannot run it; set gradcache_chunk = 0"
            )
        self.chunk_size, self.world_size = chunk_size, world_size
        self.tower = _Tower(recipe)
        if world_size > 1:  # no DDP: start every rank from rank 0's model
            distributed.broadcast_from_rank0(recipe)

    def run(
        self, batch: Mapping[str, Any], generator: torch.Generator, scale: float
    ) -> StepOutput | None:
        from manyview.training.gradcache import GradCache, NonFiniteLossError

        recipe = self.recipe
        assert isinstance(recipe, EmbedRecipe)
        if self.world_size > 1:  # as DDP does before each forward
            distributed.broadcast_buffers(recipe)
        views: Sequence[Any] = recipe.draw(batch, generator)
        m = len(views)
        seen: dict[str, StepOutput] = {}

        def loss_fn(stacked: Tensor) -> Tensor:  # (N, 1, M·D): GradCache's one "view"
            z = stacked[:, 0].unflatten(1, (m, -1))
            out = recipe.objective(z, batch, views)
            if out.embeddings is None:
                out.embeddings = z.detach()
            seen["out"] = out
            return out.loss * scale

        cache = GradCache(self.tower, loss_fn, chunk_size=self.chunk_size)
        try:
            value = cache.step([{str(i): v for i, v in enumerate(views)}])
        except NonFiniteLossError as exc:  # checked on every rank: nothing was backpropagated
            self.skipped = "embeddings" if exc.embeddings else "loss"
            return None
        self.skipped = None
        out = seen["out"]
        return StepOutput(value / scale, out.components, out.embeddings)

    def before_optimizer_step(self) -> None:
        if self.world_size > 1:  # no DDP wrapper: average as DDP would
            distributed.average_gradients(self.recipe.trainable())


def make_strategy(
    recipe: Recipe, run: Mapping[str, Any], device: torch.device, world_size: int
) -> StepStrategy:
    """The strategy the ``[run]`` table asks for: GradCache when ``gradcache_chunk`` > 0,
    else DDP under torchrun, else plain."""
    if run["gradcache_chunk"]:
        return GradCacheStep(recipe, run["gradcache_chunk"], world_size)
    if world_size > 1:
        return DDPStep(recipe, device)
    return PlainStep(recipe)
