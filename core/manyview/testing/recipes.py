"""Contract checks for recipes (``docs/architecture.md``, "Recipe"), for the project and
plugin authors.

Every registered recipe carries a tiny configuration (its ``example_config``, a TOML text)
that builds it offline in seconds; the checks build it and verify the protocol:

- it builds through the trainer, takes steps, and its loss is finite;
- a run stopped at a checkpoint and resumed ends **bit-identical** to an uninterrupted run
  (model weights and every tensor of the recipe's own state: views, losses, teacher, any
  buffer);
- for an :class:`~manyview.recipes.EmbedRecipe`, the GradCache step gives the plain step's
  gradients (exactly the same computation with one chunk; with ragged chunks too when the
  model has no batch statistics);
- its ``state_dict`` loads into a freshly built twin and gives the same state;
- ``encode(modality, inputs)`` gives ``(N, D)`` embeddings of every modality it lists.

Each ``check_*`` function raises ``AssertionError`` with a message; :class:`RecipeContractTests`
wraps them as pytest methods::

    from manyview.testing import RecipeContractTests

    class TestMyRecipe(RecipeContractTests):
        name = "my_recipe"          # as registered through manyview_register_recipes
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

import manyview

__all__ = [
    "RECIPE_CHECKS",
    "RecipeContractTests",
    "check_recipe_encode",
    "check_recipe_gradcache",
    "check_recipe_resume",
    "check_recipe_state",
    "check_recipe_steps",
    "example_config",
]


def example_config(name: str, overrides: list[str] | None = None) -> dict[str, Any]:
    """The validated ``example_config`` of recipe ``name`` (with ``--set``-style
    ``overrides``); a recipe without one fails with a message saying what to add."""
    from manyview.config import apply_overrides, validate

    factory = manyview.entry("recipe", name).load()
    text = getattr(factory, "example_config", None)
    assert isinstance(text, str) and text.strip(), (
        f"recipe {name!r} has no example_config: give its class a TOML text of a tiny "
        "configuration that builds it offline in seconds (see docs/architecture.md)"
    )
    raw = tomllib.loads(text)
    raw.setdefault("run", {})["recipe"] = name
    return validate(apply_overrides(raw, list(overrides or [])), source=f"{name}.example_config")


def _trainer(config: Mapping[str, Any], out: Path, **kwargs: Any) -> Any:
    from manyview.training.trainer import Trainer

    return Trainer(copy.deepcopy(dict(config)), out, progress=False, **kwargs)


def _tensors(state: Mapping[str, Any]) -> dict[str, Tensor]:
    return {k: v for k, v in state.items() if isinstance(v, Tensor)}


def _assert_same(a: Mapping[str, Tensor], b: Mapping[str, Tensor], what: str) -> None:
    assert a.keys() == b.keys(), (
        f"{what}: the keys differ: {sorted(set(a) ^ set(b))[:5]} (only on one side)"
    )
    for key in a:
        assert torch.equal(a[key], b[key]), f"{what}: {key} differs"


def check_recipe_steps(name: str, tmp_path: Path) -> None:
    """The example builds through the trainer, is a Recipe, and trains with finite losses."""
    from manyview.recipes import Recipe

    config = example_config(name, ["run.steps=2", "run.log_every=1", "run.checkpoint_every=2"])
    trainer = _trainer(config, tmp_path / "steps")
    metrics = trainer.fit()
    assert isinstance(trainer.recipe, Recipe), f"{name} built a {type(trainer.recipe).__name__}"
    assert trainer.step == 2 and trainer.bad_steps == 0, f"{name}: {trainer.bad_steps} bad steps"
    assert torch.isfinite(torch.tensor(metrics["loss"])), f"{name}: loss {metrics['loss']}"


def check_recipe_resume(name: str, tmp_path: Path) -> None:
    """Stopped at step 2 and resumed, a 4-step run ends bit-identical to an uninterrupted one:
    the model's weights and every tensor of the recipe's own state."""
    from manyview.training.checkpoint import load_checkpoint

    config = example_config(name, ["run.steps=4", "run.checkpoint_every=2", "run.log_every=1"])
    _trainer(config, tmp_path / "full").fit()
    _trainer(config, tmp_path / "split").fit(until=2)
    _trainer(config, tmp_path / "split", resume=True).fit()
    wa, sa = load_checkpoint(tmp_path / "full/checkpoints/last")
    wb, sb = load_checkpoint(tmp_path / "split/checkpoints/last")
    _assert_same(wa, wb, f"{name}: resumed weights")
    _assert_same(_tensors(sa["recipe"]), _tensors(sb["recipe"]), f"{name}: resumed recipe state")
    assert sa["recipe"].keys() == sb["recipe"].keys(), f"{name}: resumed state keys differ"


def _build(config: Mapping[str, Any], seed: int = 0) -> tuple[Any, Any]:
    from manyview.runs import make_dataset, seed_all

    seed_all(seed)
    dataset = make_dataset(config["data"])
    factory = manyview.entry("recipe", config["run"]["recipe"]).load()
    return factory(copy.deepcopy(dict(config)), dataset), dataset


def _batch(dataset: Any, n: int) -> Mapping[str, Any]:
    fetch = getattr(dataset, "get_batch", None)
    if fetch is not None:
        return fetch(list(range(n)))
    from torch.utils.data import default_collate

    return default_collate([dataset[i] for i in range(n)])


def _grads(recipe: nn.Module) -> dict[str, Tensor]:
    return {
        n: p.grad.detach().clone()
        for n, p in recipe.named_parameters()
        if p.requires_grad and p.grad is not None
    }


def _has_batch_statistics(module: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


def check_recipe_gradcache(name: str) -> None:
    """For an EmbedRecipe: the GradCache step's gradients equal the plain step's, with one
    chunk of the whole batch (the same computation) and, for a model without batch
    statistics, with ragged chunks. A recipe with its own ``step`` must be refused with a
    one-line ConfigError."""
    from manyview.config import ConfigError
    from manyview.recipes import EmbedRecipe
    from manyview.training.strategies import GradCacheStep, PlainStep

    config = example_config(name)
    recipe, dataset = _build(config)
    if not isinstance(recipe, EmbedRecipe):
        try:
            GradCacheStep(recipe, 2, 1)
        except ConfigError as exc:
            assert "\n" not in str(exc) and "gradcache_chunk" in str(exc), str(exc)
            return
        raise AssertionError(f"{name}: GradCache accepted a recipe with its own step")
    n = min(config["run"]["batch_size"], len(dataset))
    batch = _batch(dataset, n)
    chunks = [n] if _has_batch_statistics(recipe.model) else [n, max(1, n // 2 - 1)]
    start = copy.deepcopy(recipe.state_dict())
    results = {}
    for label, strategy in [("plain", None), *[(f"chunk {c}", c) for c in chunks]]:
        recipe.load_state_dict(start)
        recipe.zero_grad(set_to_none=True)
        recipe.train()
        torch.manual_seed(1)
        g = torch.Generator().manual_seed(2)
        step = PlainStep(recipe) if strategy is None else GradCacheStep(recipe, strategy, 1)
        out = step.run(batch, g, 1.0)
        assert out is not None, f"{name} ({label}): the loss was not finite"
        results[label] = (_grads(recipe), float(out.loss.detach()))
    plain, loss = results.pop("plain")
    assert plain, f"{name}: the plain step gave no gradients"
    for label, (grads, value) in results.items():
        assert grads.keys() == plain.keys(), (
            f"{name} ({label}): GradCache reached other parameters: "
            f"{sorted(set(grads) ^ set(plain))[:5]}"
        )
        assert abs(value - loss) <= 1e-5 * max(1.0, abs(loss)), (
            f"{name} ({label}): loss {value} != {loss}"
        )
        for key, want in plain.items():
            torch.testing.assert_close(
                grads[key], want, rtol=1e-4, atol=1e-6, msg=f"{name} ({label}): {key}"
            )


def check_recipe_state(name: str) -> None:
    """The recipe's ``state_dict`` loads into a twin built with another seed and gives the
    same state (nothing the recipe owns is left out of it)."""
    config = example_config(name)
    recipe, _ = _build(config, seed=0)
    twin, _ = _build(config, seed=1)
    state = recipe.state_dict()
    twin.load_state_dict(copy.deepcopy(state))
    _assert_same(_tensors(state), _tensors(twin.state_dict()), f"{name}: state round trip")


def check_recipe_encode(name: str) -> None:
    """``encode(modality, raw batch)`` gives finite ``(N, D)`` embeddings of every modality
    the recipe lists (the benchmark protocol)."""
    config = example_config(name)
    recipe, dataset = _build(config)
    assert recipe.modalities, f"{name}: the recipe lists no modalities to encode"
    batch = _batch(dataset, 4)
    recipe.eval()
    with torch.no_grad():
        for modality in recipe.modalities:
            z = recipe.encode(modality, batch[modality])
            assert isinstance(z, Tensor) and z.dim() == 2 and z.shape[0] == 4, (
                f"{name}: encode({modality!r}) gave {getattr(z, 'shape', type(z).__name__)}, "
                "not (N, D)"
            )
            assert torch.isfinite(z).all(), f"{name}: encode({modality!r}) is not finite"


RECIPE_CHECKS = {
    "gradcache": check_recipe_gradcache,
    "state": check_recipe_state,
    "encode": check_recipe_encode,
}
"""The checks that need no run directory (``steps`` and ``resume`` take a ``tmp_path``)."""


class RecipeContractTests:
    """pytest mixin: set ``name`` (a registered recipe with an ``example_config``)."""

    name: str = ""

    def test_steps(self, tmp_path: Path) -> None:
        check_recipe_steps(self.name, tmp_path)

    def test_resume_is_bit_identical(self, tmp_path: Path) -> None:
        check_recipe_resume(self.name, tmp_path)

    def test_gradcache_equals_plain(self) -> None:
        check_recipe_gradcache(self.name)

    def test_state_round_trip(self) -> None:
        check_recipe_state(self.name)

    def test_encode(self) -> None:
        check_recipe_encode(self.name)
