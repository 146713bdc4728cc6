"""Every registered factory of every kind checks its options at ``manyview.create`` time:
an unknown option gets a did-you-mean, a bool / int / float option of the wrong type a
one-line error naming it, and a factory that makes nothing usable an error naming its
plugin."""

from __future__ import annotations

import inspect

import pytest

import manyview
from manyview import manager
from manyview.options import OptionTypeError, check_option_types, option_types

ENTRIES = [(kind, name) for kind in manyview.KINDS for name in manyview.available(kind)]
WRONG = {"bool": "false", "int": 2.5, "float": True, "number": True}


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert text and "\n" not in text, f"not a one-line error: {text!r}"
    return text


def _options(kind: str, name: str) -> list[str]:
    params = inspect.signature(manyview.entry(kind, name).load()).parameters.values()
    return [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


@pytest.mark.parametrize(("kind", "name"), ENTRIES)
def test_an_unknown_option_is_refused_with_a_suggestion(kind, name):
    options = _options(kind, name)
    typo = options[0][:-1] + "zz" if options else "bogus_option_xyz"
    with pytest.raises(TypeError) as info:
        manyview.create(kind, name, **{typo: 1})
    text = _one_line(info.value)
    assert repr(typo) in text
    if options and len(options[0]) > 3:
        assert "did you mean" in text, text


@pytest.mark.parametrize(("kind", "name"), ENTRIES)
def test_a_wrongly_typed_bool_int_or_float_option_is_refused(kind, name):
    types = option_types(manyview.entry(kind, name).load())
    for option, (expected, _) in types.items():
        with pytest.raises(OptionTypeError) as info:
            manyview.create(kind, name, **{option: WRONG[expected]})
        text = _one_line(info.value)
        assert f"option {option!r}" in text and f"{kind} {name!r}" in text, text


def test_the_type_checks_cover_the_builtins_options():
    """Not vacuous: the options the probe found unchecked are among those checked."""
    assert option_types(manyview.entry("loss", "infonce").load()) == {
        "temperature": ("float", False),
        "normalize": ("bool", False),
    }
    assert option_types(manyview.entry("dataset", "synthetic").load())["num_samples"] == (
        "int",
        False,
    )
    typed = sum(bool(option_types(manyview.entry(k, n).load())) for k, n in ENTRIES)
    assert typed > len(ENTRIES) // 2


def test_the_string_false_is_not_a_bool():
    """``normalize="false"`` (TOML ``normalize = "false"``) used to be truthy and normalise."""
    with pytest.raises(OptionTypeError, match=r"'normalize' must be a bool.*normalize = false"):
        manyview.create("loss", "infonce", normalize="false")


def test_a_bool_is_not_a_temperature():
    with pytest.raises(OptionTypeError, match=r"'temperature' must be a number, got True"):
        manyview.create("loss", "infonce", temperature=True)


def test_a_float_is_not_an_int_option():
    """A float where an int dataset option is expected used to end in torch's overloads."""
    with pytest.raises(OptionTypeError, match=r"'num_samples' must be an int.*write 64"):
        manyview.create("dataset", "synthetic", num_samples=64.0)


def test_an_int_is_a_float_and_none_only_where_allowed():
    check_option_types(lambda temperature=0.1: None, {"temperature": 1}, "f")

    def sized(size: int | None = 3) -> None:
        """A factory with an optional int."""

    check_option_types(sized, {"size": None}, "f")
    loss = manyview.create("loss", "supcon", temperature=1, base_temperature=None)
    assert loss.temperature == 1.0
    with pytest.raises(OptionTypeError, match="'temperature' must be a number, got None"):
        manyview.create("loss", "infonce", temperature=None)


def _plugin(factory, kind="loss"):
    plural = kind + ("es" if kind.endswith("s") else "s")

    class Plugin:
        @manyview.hookimpl(specname=f"manyview_register_{plural}")
        def register_it(self, register):
            register("made_badly", factory)

    info = manager.register_plugin(Plugin(), name="bad", distribution="dist-bad")
    assert info.status == "loaded", info.error


def test_a_factory_returning_none_names_its_plugin(fresh_plugins):
    _plugin(lambda: None, "dataset")
    with pytest.raises(manyview.FactoryResultError, match=r"plugin 'dist-bad'.*returned None"):
        manyview.create("dataset", "made_badly")


def test_a_loss_that_is_not_a_module_names_its_plugin(fresh_plugins):
    _plugin(lambda: lambda z: z.sum())
    with pytest.raises(manyview.FactoryResultError, match=r"plugin 'dist-bad'.*not a torch.nn"):
        manyview.create("loss", "made_badly")


def test_a_factory_that_is_not_callable_names_its_plugin(fresh_plugins, tmp_path, monkeypatch):
    (tmp_path / "not_callable_mod.py").write_text("THING = 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    _plugin("not_callable_mod:THING")
    with pytest.raises(manyview.FactoryResultError, match=r"plugin 'dist-bad'.*not a class"):
        manyview.create("loss", "made_badly")


def test_a_quoted_bool_in_a_toml_losses_table_is_a_one_line_config_error():
    import tomllib

    from manyview.config import ConfigError
    from manyview.recipes import WeightedLosses

    specs = tomllib.loads('[[losses]]\nname = "infonce"\noptions = { normalize = "false" }')
    with pytest.raises(ConfigError, match=r"#1 \(infonce\).*'normalize' must be a bool") as info:
        WeightedLosses.from_config(specs["losses"])
    _one_line(info.value)
