"""A tiny trained run (two synthetic modalities) shared by the benchmark tests, and the
reference classifier's cache folder for this session."""

from __future__ import annotations

from pathlib import Path

import pytest

from manyview.testing import tiny_run

# The core's two-modality configuration (tests/core/conftest.py), trained longer on larger
# batches with mv_infonce alone: a run whose scores beat its untrained baseline.
LONGER = (
    "run.steps=40",
    "run.batch_size=32",
    "run.log_every=10",
    "run.metrics_every=20",
    "run.checkpoint_every=40",
    "run.keep_checkpoints=3",
    "schedule.warmup_steps=0",
    'losses=[{ name = "mv_infonce", options = { temperature = 0.2 } }]',
)


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory, two_modalities) -> Path:
    root = tmp_path_factory.mktemp("bench")
    tiny_run(root, two_modalities(LONGER))
    return root / "run"


@pytest.fixture(scope="session", autouse=True)
def data_cache(tmp_path_factory):
    """The reference classifier's cache in a folder of this session (trained once)."""
    with pytest.MonkeyPatch.context() as mp:
        root = tmp_path_factory.mktemp("data")
        mp.setenv("MANYVIEW_DATA", str(root))
        yield root
