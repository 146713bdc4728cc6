"""Fixtures shared by the core's tests: the tiny two-modality run configuration that the
trainer, distributed and benchmark tests train, and a plugin recording every lifecycle hook."""

from __future__ import annotations

import json
import textwrap
import tomllib
from collections.abc import Callable, Sequence

import pytest

import manyview
from manyview import manager
from manyview.config import apply_overrides

# Two synthetic modalities, an MLP each, mv_infonce and isogclr: a run of a few seconds.
# Nothing random outside the initial weights and the batches (no dropout, no random views),
# so two ranks can reproduce one process; tests that want randomness add it by overrides.
TWO_MODALITIES = """
[run]
recipe = "contrastive"
seed = 3
steps = 12
batch_size = 16
log_every = 2
metrics_every = 4
checkpoint_every = 4
keep_checkpoints = 2

[data]
name = "synthetic"
options = { modalities = { a = 8, b = 12 }, num_samples = 256, num_classes = 4 }

[optimizer]
name = "adamw"
lr = 0.005

[schedule]
warmup_steps = 3

[modalities]
a = { encoder = "mlp", encoder_options = { output_dim = 16, hidden_dim = 32 }, projector_dim = 8 }
b = { encoder = "mlp", encoder_options = { output_dim = 16, hidden_dim = 32 }, projector_dim = 8 }

[[losses]]
name = "mv_infonce"
options = { temperature = 0.2 }

[[losses]]
name = "isogclr"
weight = 0.5
"""


def two_modalities_toml(overrides: Sequence[str] = (), extra: str = "") -> str:
    """:data:`TWO_MODALITIES` with ``--set``-style ``overrides`` applied, then the TOML text
    ``extra`` (more ``[[losses]]``, say). Written as it is above (a section a table, values
    inline) so that a test may edit the text."""
    raw = apply_overrides(tomllib.loads(TWO_MODALITIES), list(overrides))
    sections = []
    for key, value in raw.items():
        if isinstance(value, list):  # an array of tables
            sections += [(f"[[{key}]]", item) for item in value]
        elif all(isinstance(table, dict) for table in value.values()):  # [modalities.<name>]
            sections += [(f"[{key}.{name}]", table) for name, table in value.items()]
        else:
            sections.append((f"[{key}]", value))
    text = "".join(
        f"\n{header}\n" + "".join(f"{k} = {_inline(v)}\n" for k, v in table.items())
        for header, table in sections
    )
    return text + textwrap.dedent(extra)


def _inline(value: object) -> str:
    """``value`` as an inline TOML value."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_inline(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_inline(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


@pytest.fixture(scope="session")
def two_modalities() -> Callable[..., str]:
    """The TOML text of the tiny two-modality configuration: ``two_modalities(overrides,
    extra)`` (see :func:`two_modalities_toml`)."""
    return two_modalities_toml


class LifecycleRecorder:
    """Implements every lifecycle hook and records what it was called with."""

    def __init__(self, seen: list[tuple[object, ...]]) -> None:
        self.seen = seen

    @manyview.hookimpl
    def manyview_train_start(self, trainer):
        self.seen.append(("start", trainer))

    @manyview.hookimpl
    def manyview_step_end(self, trainer, step, metrics):
        self.seen.append(("step", step, metrics["loss"]))

    @manyview.hookimpl
    def manyview_checkpoint_saved(self, trainer, path):
        self.seen.append(("ckpt", path))

    @manyview.hookimpl
    def manyview_train_end(self, trainer):
        self.seen.append(("end", trainer))


@pytest.fixture
def lifecycle_recorder() -> type[LifecycleRecorder]:
    """The class of a plugin implementing every lifecycle hook: ``lifecycle_recorder(seen)``
    records into the list ``seen``."""
    return LifecycleRecorder


@pytest.fixture
def seen(fresh_plugins: None) -> list[tuple[object, ...]]:
    """What the lifecycle hooks of a registered plugin ``recorder`` (a
    :class:`LifecycleRecorder`) were called with, in order."""
    calls: list[tuple[object, ...]] = []
    manager.register_plugin(LifecycleRecorder(calls), name="recorder")
    return calls
