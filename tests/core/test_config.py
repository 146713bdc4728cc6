"""Configuration keys manyview refuses on purpose: a one-line ConfigError that says why and
what to do, from a file, an override or a mapping."""

from __future__ import annotations

import pytest

from manyview.config import RUN, ConfigError, load_config, validate

MINIMAL = {
    "data": {"name": "synthetic"},
    "losses": [{"name": "infonce"}],
}
WHY = (
    "config: [run] num_workers is not supported (data is fetched in the training process); "
    "remove the key"
)


def test_num_workers_is_not_a_key_of_the_schema():
    assert "num_workers" not in RUN
    assert "num_workers" not in validate(MINIMAL)["run"]


@pytest.mark.parametrize("value", [0, 4])
def test_num_workers_is_refused_with_the_reason(value):
    with pytest.raises(ConfigError) as info:
        validate({**MINIMAL, "run": {"steps": 2, "num_workers": value}})
    assert str(info.value) == WHY
    assert "\n" not in str(info.value)


def test_num_workers_is_refused_from_a_file_and_from_an_override(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('[data]\nname = "synthetic"\n\n[[losses]]\nname = "infonce"\n')
    assert load_config(path)["run"]["steps"] == 100
    with pytest.raises(ConfigError, match=r"^run\.toml: \[run\] num_workers is not supported"):
        load_config(path, ["run.num_workers=2"])
    path.write_text(path.read_text() + "\n[run]\nnum_workers = 2\n")
    with pytest.raises(ConfigError, match=r"remove the key$"):
        load_config(path)
