"""``manyview.losses.engine.EngineConfig``: its checks (one-line errors naming the field),
what a loss's ``engine`` option accepts (a mode name, a table of fields as a TOML config
gives it, a config), and the threshold rule of ``"auto"``."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import torch

import manyview
from manyview.losses.engine import (
    DEFAULT_MIN_ENTRIES,
    DEFAULT_TILE,
    EngineConfig,
    TritonBackend,
    tiled_logsumexp,
)


def test_defaults_and_normalised_fields() -> None:
    config = EngineConfig()
    assert (config.mode, config.backend, config.triton) == ("auto", "auto", None)
    assert (config.tile, config.min_entries) == (DEFAULT_TILE, DEFAULT_MIN_ENTRIES)
    assert EngineConfig(tile=8).tile == (8, 8)
    assert EngineConfig(tile=[4, 7]).tile == (4, 7)  # a TOML array
    assert EngineConfig("tiled", tile=(4, 7)) == EngineConfig(mode="tiled", tile=(4, 7))
    assert hash(EngineConfig("dense")) == hash(EngineConfig("dense"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.mode = "tiled"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mode": "tiles"}, r"EngineConfig: unknown mode 'tiles'; did you mean 'tiled'\?"),
        ({"backend": "trition"}, "unknown backend 'trition'; did you mean 'triton'"),
        ({"tile": 0}, "tile must be a positive int or"),
        ({"tile": (4, 0)}, "tile must be a positive int or"),
        ({"tile": (4, 7, 1)}, "tile must be a positive int or"),
        ({"tile": True}, "tile must be a positive int or"),
        ({"min_entries": -1}, "min_entries must be a non-negative int"),
        ({"min_entries": 2.5}, "min_entries must be a non-negative int"),
        ({"triton": "cuda"}, "triton must be a TritonBackend or None, got str"),
    ],
    ids=str,
)
def test_bad_fields(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match) as info:
        EngineConfig(**kwargs)
    assert "\n" not in str(info.value)


def test_parse_takes_a_name_a_table_or_a_config() -> None:
    config = EngineConfig("tiled", tile=(4, 7))
    assert EngineConfig.parse(config) is config
    assert EngineConfig.parse("dense", "infonce") == EngineConfig("dense")
    assert EngineConfig.parse({"mode": "tiled", "tile": [4, 7]}) == config
    with pytest.raises(ValueError, match=r"infonce: unknown engine 'tiles'; did you mean 'tiled'"):
        EngineConfig.parse("tiles", "infonce")
    with pytest.raises(ValueError, match=r"infonce: unknown engine field 'tiles'.*'tile'"):
        EngineConfig.parse({"tiles": 4}, "infonce")
    with pytest.raises(ValueError, match="infonce: EngineConfig: tile must be"):
        EngineConfig.parse({"tile": -1}, "infonce")
    with pytest.raises(ValueError, match=r"infonce: engine must be 'auto', 'dense', 'tiled'.*int"):
        EngineConfig.parse(3, "infonce")


def test_use_tiled_and_the_primitive_options() -> None:
    assert EngineConfig(min_entries=100).use_tiled(101)
    assert not EngineConfig(min_entries=100).use_tiled(100)
    assert EngineConfig(min_entries=100).use_tiled(13, factor=0.125)
    assert not EngineConfig(min_entries=100).use_tiled(12, factor=0.125)
    assert EngineConfig("tiled").use_tiled(0) and not EngineConfig("dense").use_tiled(10**12)
    backend = TritonBackend()
    options = EngineConfig(backend="torch", tile=(2, 3), triton=backend).lse_options()
    assert options == {"tile": (2, 3), "backend": "torch", "triton": backend}
    a, b = torch.randn(5, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    torch.testing.assert_close(
        tiled_logsumexp(a, b, 2.0, **options), torch.logsumexp(2.0 * a @ b.T, dim=1)
    )


def test_a_loss_keeps_its_config_and_takes_a_table_through_create() -> None:
    table = {"mode": "tiled", "tile": [4, 7], "min_entries": 0}
    loss = manyview.create("loss", "infonce", engine=table)
    assert loss.engine == EngineConfig("tiled", tile=(4, 7), min_entries=0)
    assert manyview.create("loss", "clip", engine="dense").engine == EngineConfig("dense")
    views = torch.randn(9, 2, 5, dtype=torch.float64)
    dense = manyview.create("loss", "infonce", engine="dense").double()
    torch.testing.assert_close(loss.double()(views), dense(views), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="infonce: unknown engine field 'mdoe'"):
        manyview.create("loss", "infonce", engine={"mdoe": "tiled"})
