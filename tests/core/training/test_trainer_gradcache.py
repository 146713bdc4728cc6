"""``[run] gradcache_chunk``: the trainer's GradCache step gives the direct step's training."""

from __future__ import annotations

import pytest
import torch

import manyview
from manyview.config import ConfigError, load_config
from manyview.recipes import Recipe, StepOutput
from manyview.testing import example_config
from manyview.training.trainer import Trainer


def _weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


def _train(path, out, sets):
    trainer = Trainer(load_config(path, sets), out, progress=False)
    metrics = trainer.fit()
    return trainer, metrics


@pytest.mark.parametrize(
    ("chunk", "sets"),
    [
        (16, []),  # chunk >= batch: even the dropout masks are the same draws
        (5, ["modalities.a.encoder_options.dropout=0.0"]),  # ragged chunks, no randomness
    ],
)
def test_gradcache_training_equals_direct_training(tiny_config, tmp_path, chunk, sets):
    path = tiny_config(steps=6, every=6)
    direct, m1 = _train(path, tmp_path / "direct", sets)
    cached, m2 = _train(path, tmp_path / "cached", [*sets, f"run.gradcache_chunk={chunk}"])
    a, b = _weights(direct), _weights(cached)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], atol=2e-5, rtol=1e-4, msg=key)
    assert m2["loss"] == pytest.approx(m1["loss"], rel=1e-4)
    assert set(m2) == set(m1)  # the same logged metrics (components, diagnostics)


def test_gradcache_with_accumulation_and_bf16_is_finite(tiny_config, tmp_path):
    sets = ["run.gradcache_chunk=4", "run.grad_accum=2", 'run.precision="bf16"']
    trainer, metrics = _train(tiny_config(steps=3), tmp_path / "run", sets)
    assert torch.isfinite(torch.tensor(metrics["loss"])) and trainer.batches_consumed == 6


def test_a_non_finite_gradcache_step_is_skipped(tiny_config, tmp_path, nan_loss):
    extra = '\n[[losses]]\nname = "nan_after"\noptions = { after = 4 }\n'
    sets = ["run.gradcache_chunk=8", "run.max_bad_steps=10"]
    trainer, _ = _train(tiny_config(steps=5, extra=extra), tmp_path / "run", sets)
    assert trainer.bad_steps == 2 and trainer.step == 5


class _WholeStep:
    """An in-process plugin with a recipe that computes its own step (no embed split)."""

    @manyview.hookimpl
    def manyview_register_recipes(self, register):
        register("whole_step", WholeStepRecipe)


class WholeStepRecipe(Recipe):
    """A recipe with its own step: an MLP's mean squared output."""

    def __init__(self, config, dataset):
        super().__init__()
        self.model = torch.nn.Linear(dataset[0]["a"].shape[-1], 2)

    def step(self, batch, generator):
        return StepOutput(self.model(batch["a"]).pow(2).mean())


def test_a_recipe_without_the_embed_split_is_a_config_error(tmp_path, fresh_plugins):
    from manyview import manager

    manager.register_plugin(_WholeStep(), name="wholestep")
    # any tiny configuration will do: the contrastive recipe's, trained by whole_step
    plain = example_config("contrastive", ['run.recipe="whole_step"'])
    Trainer(plain, tmp_path / "plain", progress=False).fit()  # trains as it is
    cached = example_config("contrastive", ['run.recipe="whole_step"', "run.gradcache_chunk=4"])
    with pytest.raises(ConfigError, match=r"computes its own step .* set gradcache_chunk = 0"):
        Trainer(cached, tmp_path / "gc", progress=False).fit()


def test_the_gradcache_step_is_the_one_that_runs(tiny_config, tmp_path, monkeypatch):
    from manyview.training.strategies import GradCacheStep

    calls = []
    original = GradCacheStep.run

    def spy(self, batch, generator, scale):
        calls.append((self.chunk_size, scale))
        return original(self, batch, generator, scale)

    monkeypatch.setattr(GradCacheStep, "run", spy)
    _train(tiny_config(steps=2), tmp_path / "run", ["run.gradcache_chunk=8", "run.grad_accum=2"])
    assert calls == [(8, 0.5)] * 4
