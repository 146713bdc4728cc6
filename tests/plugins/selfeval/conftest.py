"""Shared fixtures of the manyview-selfeval tests: tiny trained self_e runs."""

from __future__ import annotations

import pytest


def _train(path, overrides):
    from manyview.testing.recipes import example_config
    from manyview.training.trainer import Trainer

    config = example_config("self_e", ["run.steps=2", "run.checkpoint_every=2", *overrides])
    Trainer(config, path, progress=False).fit()
    return path


@pytest.fixture(scope="session")
def tiny_self_e(tmp_path_factory):
    """A 2-step run of the self_e recipe's example configuration (Self-E)."""
    return _train(tmp_path_factory.mktemp("self_e"), [])


@pytest.fixture(scope="session")
def tiny_flow_matching(tmp_path_factory):
    """The same run in flow-matching mode."""
    overrides = ["recipe_options.mode='flow_matching'", "recipe_options.aux_start=false"]
    return _train(tmp_path_factory.mktemp("flow_matching"), overrides)
