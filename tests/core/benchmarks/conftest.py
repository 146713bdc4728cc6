"""A tiny trained run (two synthetic modalities) shared by the benchmark tests."""

from __future__ import annotations

from pathlib import Path

import pytest

CONFIG = """
[run]
recipe = "contrastive"
seed = 3
steps = 40
batch_size = 32
log_every = 10
metrics_every = 20
checkpoint_every = 40

[data]
name = "synthetic"
options = { modalities = { a = 8, b = 12 }, num_samples = 256, num_classes = 4 }

[optimizer]
name = "adamw"
lr = 0.005

[modalities.a]
encoder = "mlp"
encoder_options = { output_dim = 16, hidden_dim = 32 }
projector_dim = 8

[modalities.b]
encoder = "mlp"
encoder_options = { output_dim = 16, hidden_dim = 32 }
projector_dim = 8

[[losses]]
name = "mv_infonce"
options = { temperature = 0.2 }
"""


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory) -> Path:
    from manyview.config import load_config
    from manyview.training.trainer import Trainer

    root = tmp_path_factory.mktemp("bench")
    (root / "tiny.toml").write_text(CONFIG)
    Trainer(load_config(root / "tiny.toml"), root / "run", progress=False).fit()
    return root / "run"
