"""The recipe protocol: what a recipe gives the trainer, and what the trainer does with it.

A recipe is an ``nn.Module`` registered through ``manyview_register_recipes``; its factory
is called as ``factory(config, dataset)`` with the validated configuration (a dict, see
:mod:`manyview.config`) and the training dataset, and returns a :class:`Recipe`. The
trainer owns the loop, the step strategy (plain, DDP or GradCache), the optimizer,
checkpoints and logging; the recipe owns its modules and its state. The whole protocol is
written down in ``docs/architecture.md``.

Two shapes of recipe:

- :class:`EmbedRecipe` — "embed, then a loss over the embeddings" (contrastive learning,
  distillation of embeddings): :meth:`~EmbedRecipe.draw` makes the step's random views,
  :meth:`~EmbedRecipe.embed_views` encodes them into ``(N, M, D)``, and
  :meth:`~EmbedRecipe.objective` turns the embeddings into the loss. The split is what lets
  the trainer run any such recipe with GradCache.
- :class:`Recipe` with its own :meth:`~Recipe.step` — anything else (a denoising step, a
  step with a no-grad self-evaluation pass).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

__all__ = ["EmbedRecipe", "Recipe", "StepOutput", "batch_inputs"]


@dataclass
class StepOutput:
    """One training step's result.

    Attributes:
        loss: the weighted total, a 0-dim tensor with gradients (the trainer backpropagates
            it; under GradCache it is detached and the gradients are already in ``.grad``).
        components: each loss term's unweighted value for the logs, as detached 0-dim
            tensors or floats (read only at logging steps: no device synchronisation).
        embeddings: ``(N, M, D)`` detached embeddings for the diagnostics, or ``None``.
    """

    loss: Tensor
    components: dict[str, Tensor | float] = field(default_factory=dict)
    embeddings: Tensor | None = None


def batch_inputs(batch: Mapping[str, Any]) -> dict[str, Any]:
    """The loss inputs a batch provides: ``labels`` from its ``"label"`` and ``index`` from
    its ``"index"`` entries (those it has)."""
    out = {}
    if "label" in batch:
        out["labels"] = batch["label"]
    if "index" in batch:
        out["index"] = batch["index"]
    return out


class Recipe(nn.Module):
    """Base class of recipes. A recipe provides:

    - ``model``: the modules it trains; its ``state_dict`` is the run's
      ``model.safetensors`` (what ``manyview bench`` and ``load_run`` read);
    - ``teacher``: an optional teacher (``None`` by default), updated by :meth:`after_step`;
    - ``losses``: usually a :class:`~manyview.recipes.WeightedLosses`;
    - :meth:`step` (or the :class:`EmbedRecipe` methods);
    - :meth:`trainable`: the parameters the optimizer updates;
    - :attr:`modalities` and :meth:`encode`: embeddings of raw inputs of a modality, for
      benchmarks (the benchmark protocol) and teachers built from a run;
    - its state: the module's own ``state_dict``/``load_state_dict``. Every parameter,
      buffer and submodule (views, losses, teacher, a memory bank) is checkpointed and
      restored on ``--resume``; state that is not a tensor goes through
      ``get_extra_state``/``set_extra_state`` and must be made of tensors, numbers,
      strings, lists and dicts (checkpoints load with ``torch.load(weights_only=True)``).

    Attributes:
        example_config: the TOML text of a tiny configuration that builds this recipe
            offline in seconds; :class:`manyview.testing.RecipeContractTests` runs it.
    """

    example_config: ClassVar[str | None] = None
    teacher: nn.Module | None
    #: whether the recipe reads the ``[teacher]`` table; ``None`` (the default): it does
    #: when it built a teacher. The trainer refuses a ``[teacher]`` table the recipe ignores.
    uses_teacher: bool | None = None
    model: nn.Module

    def __init__(self) -> None:
        super().__init__()
        self.teacher = None

    def step(self, batch: Mapping[str, Any], generator: torch.Generator) -> StepOutput:
        """One training step's loss on a collated ``batch``; draw every random number the
        step needs from ``generator`` (on the batch's device) or torch's global generator."""
        raise NotImplementedError(f"{type(self).__name__} must implement step()")

    def trainable(self) -> list[nn.Parameter]:
        """Parameters the optimizer updates: every parameter of the recipe that requires
        grad (the model's, the losses' — a learnable temperature, an adapter — and any other
        submodule's), each once."""
        return [p for p in self.parameters() if p.requires_grad]

    def after_step(self, step: int) -> None:
        """Called after each optimizer step that was taken (``step`` counts from 0); the
        default updates the teacher: ``teacher.update(model, step)``."""
        if self.teacher is not None:
            self.teacher.update(self.model, step)

    @property
    def modalities(self) -> tuple[str, ...]:
        """The modalities :meth:`encode` takes (benchmarks embed each of them)."""
        return ()

    def encode(self, modality: str, inputs: Any) -> Tensor:
        """Embeddings ``(N, D)`` of a batch of raw (un-viewed) inputs of ``modality`` in the
        space the recipe trains, e.g. encoder then projector. The caller chooses train or
        eval mode and gradients."""
        raise NotImplementedError(
            f"{type(self).__name__} does not encode inputs (it has no modalities to embed)"
        )

    def compile_model(self) -> None:
        """``torch.compile`` the model's computing modules in place: the outermost modules
        that define ``forward`` (a ``ModuleDict`` of encoders is entered, each encoder is
        compiled whole). The step's Python-side checks stay eager."""

        def visit(module: nn.Module) -> None:
            if type(module).forward is not nn.Module.forward:
                module.compile()
                return
            for child in module.children():
                visit(child)

        visit(self.model)


class EmbedRecipe(Recipe):
    """A recipe whose step is "embed, then a loss over the embeddings".

    Subclasses implement the three parts; :meth:`step` composes them, and the trainer's
    GradCache strategy composes them too (views drawn once, :meth:`embed_views` run on
    chunks of instances without and then with gradients, :meth:`objective` once on the whole
    batch), so one definition serves both paths.
    """

    def draw(self, batch: Mapping[str, Any], generator: torch.Generator) -> list[Any]:
        """The step's M views: a list of M batch-first inputs (a tensor with the N instances
        on dim 0, a list of N strings, or a dict of such), in the order of the embeddings'
        view axis. All the step's randomness outside the encoders is drawn here."""
        raise NotImplementedError(f"{type(self).__name__} must implement draw()")

    def embed_views(self, views: Sequence[Any]) -> Tensor:
        """``(n, M, D)`` embeddings of the M views of n instances (any n: GradCache calls it
        on chunks). Randomness inside (dropout) must come from torch's global generators."""
        raise NotImplementedError(f"{type(self).__name__} must implement embed_views()")

    def objective(self, z: Tensor, batch: Mapping[str, Any], views: Sequence[Any]) -> StepOutput:
        """The step's loss from the whole batch's embeddings ``z`` ``(N, M, D)``, the batch
        and the views :meth:`draw` made (e.g. for a teacher)."""
        raise NotImplementedError(f"{type(self).__name__} must implement objective()")

    def embed(self, batch: Mapping[str, Any], generator: torch.Generator) -> Tensor:
        """``(N, M, D)``: :meth:`draw` then :meth:`embed_views`."""
        return self.embed_views(self.draw(batch, generator))

    def step(self, batch: Mapping[str, Any], generator: torch.Generator) -> StepOutput:
        views = self.draw(batch, generator)
        z = self.embed_views(views)
        out = self.objective(z, batch, views)
        if out.embeddings is None:
            out.embeddings = z.detach()
        return out
