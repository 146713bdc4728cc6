"""The nested-option helpers recipes share: one-line ConfigErrors naming the table."""

from __future__ import annotations

import pytest

from manyview.config import ConfigError
from manyview.recipes import option_switch, option_table, sub_options


def test_sub_options_fill_defaults_and_refuse_unknown_keys():
    assert sub_options({"tau": 0.1}, {"tau": 0.2, "dim": 64}, "moco_options") == {
        "tau": 0.1,
        "dim": 64,
    }
    with pytest.raises(ConfigError, match=r"moco_options: unknown key 'tua'; did you mean 'tau'"):
        sub_options({"tua": 1}, {"tau": 0.2, "dim": 64}, "moco_options")


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: option_table([1], "network_config"), "network_config must be a table, got list"),
        (lambda: option_switch("yes", "moco"), "moco must be true or false, got 'yes'"),
        (lambda: sub_options(3, {}, "align_options"), "align_options must be a table"),
    ],
)
def test_bad_entries_are_one_line(call, match):
    with pytest.raises(ConfigError, match=match) as info:
        call()
    assert "\n" not in str(info.value)
    assert option_switch(True, "x") is True and option_table({"a": 1}, "x") == {"a": 1}
