"""The distill recipe: self-distillation with an EMA teacher, and a frozen teacher."""

from __future__ import annotations

import json

import torch
from safetensors.torch import save_file

from manyview.config import load_config
from manyview.encoders.mlp import MLPEncoder
from manyview.training.trainer import Trainer

DINO = """
[run]
recipe = "distill"
steps = 30
batch_size = 32
log_every = 10
metrics_every = 10
checkpoint_every = 15
[data]
name = "synthetic"
options = { modalities = { a = 12 }, num_samples = 256, num_classes = 4 }
[optimizer]
lr = 0.003
[modalities.a]
encoder = "mlp"
encoder_options = { output_dim = 32 }
num_views = 4
views = [{ name = "gaussian_noise", options = { std = 0.3 } }]
projector_dim = 64
[recipe_options]
teacher_views = 2
[teacher]
name = "ema"
options = { momentum = 0.99, schedule = "cosine", total_steps = 30 }
[[losses]]
name = "dino"
options = { out_dim = 64 }
"""
# DINO needs several views and a wide head (not the distill recipe's example_config); the
# feature-distillation tests below change it to one view, a frozen teacher, a feature loss.
ONE_VIEW = ("modalities.a.num_views=1", "recipe_options.teacher_views=1")


def _dino(tmp_path, overrides=()) -> dict:
    """:data:`DINO` validated, with ``--set``-style ``overrides``."""
    path = tmp_path / "dino.toml"
    path.write_text(DINO)
    return load_config(path, list(overrides))


def test_dino_self_distillation_with_ema_teacher(tmp_path):
    trainer = Trainer(_dino(tmp_path), tmp_path / "run", progress=False)
    trainer.fit()
    rows = [json.loads(x) for x in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in rows)
    teacher = trainer.teacher.module
    student = trainer.model
    diff = [
        (a - b).abs().max() for a, b in zip(teacher.parameters(), student.parameters(), strict=True)
    ]
    assert max(diff) > 0  # the teacher lags the student
    assert not any(p.requires_grad for p in teacher.parameters())
    assert int(trainer.teacher.num_updates) == 30
    # the teacher and DINO's center are checkpointed
    state = torch.load(tmp_path / "run/checkpoints/last/state.pt", weights_only=True)
    assert "teacher.module.encoder.net.0.weight" in state["recipe"]
    assert "losses.losses.dino.center" in state["recipe"]


def test_feature_distillation_from_a_frozen_checkpoint(tmp_path):
    teacher = MLPEncoder(input_dim=12, output_dim=24)
    save_file(
        {k: v.contiguous() for k, v in teacher.state_dict().items()},
        str(tmp_path / "t.safetensors"),
    )
    frozen = (
        'teacher={ name = "frozen", options = { encoder = "mlp", encoder_kwargs = '
        f'{{ input_dim = 12, output_dim = 24 }}, checkpoint = "{tmp_path / "t.safetensors"}" }} }}'
    )
    feature = 'losses=[{ name = "feature", options = { kind = "cosine" } }]'
    trainer = Trainer(
        _dino(tmp_path, [*ONE_VIEW, frozen, feature]), tmp_path / "run", progress=False
    )
    trainer.fit()
    rows = [json.loads(x) for x in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["loss"] < rows[0]["loss"]
    x = torch.randn(4, 12)
    assert torch.equal(trainer.teacher(x), teacher(x).detach())  # loaded, never updated


def test_the_students_output_dim_is_its_heads_width(tmp_path):
    """Regression: with an MLP head (projector_hidden) the student once reported the
    encoder's width (32) instead of the head's (64), and losses were built for it."""
    from manyview.recipes import DistillRecipe

    frozen = (
        'teacher={ name = "frozen", options = '
        '{ encoder = "mlp", encoder_kwargs = { input_dim = 12, output_dim = 40 } } }'
    )
    head = ["modalities.a.projector_hidden=48", 'losses=[{ name = "feature" }]', frozen]
    config = _dino(tmp_path, [*ONE_VIEW, *head])
    recipe = DistillRecipe(
        config, __import__("manyview").create("dataset", "synthetic", **config["data"]["options"])
    )
    assert recipe.model.output_dim == 64 == recipe.model.encoder.output_dim * 2
    feature = recipe.losses.losses["feature"]
    assert (feature.student_dim, feature.teacher_dim) == (64, 40)  # an adapter 64 -> 40
    Trainer(config, tmp_path / "run", progress=False).fit()
