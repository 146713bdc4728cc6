"""The registry: names, lookups, errors, and plugins registered in-process."""

from __future__ import annotations

import pytest
from torch import nn

import manyview
from manyview import manager as plugins
from manyview.registry import Registry, make_entry, normalize_kind


def test_available_lists_builtin_losses_sorted():
    names = manyview.available("loss")
    assert names == sorted(names)
    assert {"infonce", "mv_infonce", "mv_dhel", "supcon"} <= set(names)


@pytest.mark.parametrize("kind", ["loss", "losses", "LOSS", " loss "])
def test_kind_aliases(kind):
    assert normalize_kind(kind) == "loss"


def test_unknown_kind_suggests():
    with pytest.raises(manyview.UnknownKindError, match="did you mean 'loss'"):
        manyview.available("los")


def test_unknown_name_suggests_close_matches():
    with pytest.raises(manyview.UnknownNameError) as info:
        manyview.create("loss", "infonse")
    message = str(info.value)
    assert "did you mean 'infonce'" in message
    assert "manyview list loss" in message


def test_create_rejects_misspelt_argument_with_suggestion():
    with pytest.raises(TypeError, match="did you mean 'temperature'"):
        manyview.create("loss", "infonce", temprature=0.2)


def test_create_passes_arguments():
    loss = manyview.create("loss", "infonce", temperature=0.25)
    assert loss.temperature == 0.25


def test_qualified_name_always_works():
    assert manyview.entry("loss", "manyview:infonce").name == "infonce"


def test_entry_metadata():
    entry = manyview.entry("view", "embedding_noise")
    assert entry.modality == "embedding"
    assert entry.plugin == "manyview"
    assert entry.summary


def test_register_validation():
    with pytest.raises(ValueError, match="modality"):
        make_entry("encoder", "enc", "a.b:C", "p")
    with pytest.raises(ValueError, match="not valid"):
        make_entry("loss", "a:b", "a.b:C", "p")
    with pytest.raises(ValueError, match="module:Attr"):
        make_entry("loss", "x", "no_colon", "p")
    with pytest.raises(TypeError, match="factory"):
        make_entry("loss", "x", 42, "p")
    with pytest.raises(ValueError, match="modality"):
        make_entry("reader", "wav", "a.b:C", "p")
    with pytest.raises(ValueError, match=r"suffixes as a tuple"):
        make_entry("reader", "wav", "a.b:C", "p", modality="audio", suffixes=".wav")
    with pytest.raises(ValueError, match=r"suffixes as a tuple"):
        make_entry("reader", "wav", "a.b:C", "p", modality="audio", suffixes=("wav",))
    entry = make_entry("reader", "wav", "a.b:C", "p", modality="audio", suffixes=(".wav",))
    assert entry.meta == {"suffixes": (".wav",)} and entry.modality == "audio"


@pytest.mark.parametrize(
    ("word", "choices", "expected"),
    [
        ("infonse", ["infonce", "clip"], "; did you mean 'infonce'?"),
        ("dhel", ["mv_dhel", "dhel_", "clip"], "; did you mean 'dhel_' or 'mv_dhel'?"),
        ("zzz", ["infonce", "clip"], ""),
        ("x", [], ""),
    ],
)
def test_did_you_mean(word, choices, expected):
    assert manyview.did_you_mean(word, choices) == expected


def test_did_you_mean_takes_any_iterable_and_repeats_nothing():
    assert manyview.did_you_mean("los", iter(["loss", "loss"])) == "; did you mean 'loss'?"


def test_describe_names_the_factory():
    class Local:
        """A factory defined here."""

    described = make_entry("loss", "local", Local, "p").describe()
    assert described["factory"] == f"{__name__}:test_describe_names_the_factory.<locals>.Local"
    assert make_entry("loss", "s", "pkg.mod:Attr", "p").describe()["factory"] == "pkg.mod:Attr"
    assert (
        manyview.entry("loss", "infonce").describe()["factory"] == "manyview.losses.infonce:InfoNCE"
    )


def test_summary_defaults_to_docstring_first_line():
    class Thing:
        """First line.

        More text."""

    assert make_entry("loss", "thing", Thing, "p").summary == "First line."


def test_ambiguous_name_names_both_distributions():
    reg = Registry(
        [
            make_entry("loss", "same", "a.m:A", "dist-a"),
            make_entry("loss", "same", "b.m:B", "dist-b"),
        ]
    )
    with pytest.raises(manyview.AmbiguousNameError) as info:
        reg.get("loss", "same")
    assert "dist-a" in str(info.value) and "dist-b" in str(info.value)
    assert reg.get("loss", "dist-b:same").factory == "b.m:B"
    assert reg.names("loss") == ["dist-a:same", "dist-b:same"]


def test_factory_that_fails_to_import_gives_clear_error():
    entry = make_entry("loss", "ghost", "no_such_module_xyz:Loss", "ghost-dist")
    with pytest.raises(manyview.FactoryLoadError, match="ghost-dist"):
        entry.load()


class _Tagged(nn.Module):
    """A stand-in loss (a loss factory must make an nn.Module) that remembers its arguments."""

    def __init__(self, *tag: object) -> None:
        super().__init__()
        self.tag = tag[0] if len(tag) == 1 else tag


class _GoodPlugin:
    @manyview.hookimpl
    def manyview_register_losses(self, register):
        register("tiny_loss", lambda scale=1.0: _Tagged("tiny", scale), summary="a tiny loss")

    @manyview.hookimpl
    def manyview_register_views(self, register):
        register("tiny_view", lambda: "view", modality="image")


class _BrokenPlugin:
    @manyview.hookimpl
    def manyview_register_losses(self, register):
        register("half_registered", lambda: None)
        raise RuntimeError("boom inside the hook")


def test_in_process_plugin_registers(fresh_plugins):
    info = plugins.register_plugin(_GoodPlugin(), name="good")
    assert info.status == "loaded"
    assert info.registered["loss"] == ["tiny_loss"]
    assert manyview.create("loss", "tiny_loss", scale=2.0).tag == ("tiny", 2.0)
    assert manyview.entry("view", "tiny_view").modality == "image"
    plugins.unregister_plugin("good")
    assert "tiny_loss" not in manyview.available("loss")


def test_plugin_raising_in_hook_is_recorded_and_contained(fresh_plugins):
    info = plugins.register_plugin(_BrokenPlugin(), name="broken")
    assert info.status == "failed"
    assert "boom inside the hook" in info.error
    assert "half_registered" not in manyview.available("loss")
    assert "infonce" in manyview.available("loss")
    assert any(p.name == "broken" and p.status == "failed" for p in manyview.plugins())


def test_plugin_registering_a_name_twice_fails_alone(fresh_plugins):
    class Twice:
        @manyview.hookimpl
        def manyview_register_losses(self, register):
            register("dup", lambda: 1)
            register("dup", lambda: 2)

    info = plugins.register_plugin(Twice(), name="twice")
    assert info.status == "failed" and "twice" in info.error
    assert "dup" not in manyview.available("loss")


def test_same_name_from_two_plugins_is_ambiguous(fresh_plugins):
    class A:
        @manyview.hookimpl
        def manyview_register_losses(self, register):
            register("shared", lambda: _Tagged("a"))

    class B:
        @manyview.hookimpl
        def manyview_register_losses(self, register):
            register("shared", lambda: _Tagged("b"))

    plugins.register_plugin(A(), name="a", distribution="dist-a")
    plugins.register_plugin(B(), name="b", distribution="dist-b")
    with pytest.raises(manyview.AmbiguousNameError, match="dist-a:shared"):
        manyview.create("loss", "shared")
    assert manyview.create("loss", "dist-b:shared").tag == "b"


def test_builtins_are_reported_as_plugins():
    infos = {p.name: p for p in manyview.plugins()}
    assert [name for name in infos if name.startswith("manyview.")] == list(plugins.BUILTINS)
    losses = infos["manyview.losses"]
    assert losses.builtin and losses.status == "loaded" and losses.distribution == "manyview"
    assert losses.module == "manyview.default_plugins.losses"
    assert "mv_dhel" in losses.registered["loss"]


def test_builtins_use_pluggys_name_map():
    pm = plugins.plugin_manager()
    names = dict(pm.list_name_plugin())
    for name in plugins.BUILTINS:
        assert names[name].__name__ == name.replace("manyview.", "manyview.default_plugins.")
        assert pm.get_name(pm.get_plugin(name)) == name


def test_disabled_builtin_is_blocked_and_its_names_are_gone(fresh_plugins, monkeypatch):
    monkeypatch.setenv("MANYVIEW_DISABLE_PLUGINS", "manyview.losses")
    monkeypatch.setenv("MANYVIEW_LOAD_PLUGINS", "")  # the allow-list leaves built-ins alone
    plugins.reload()
    infos = {p.name: p for p in manyview.plugins()}
    assert infos["manyview.losses"].status == "disabled" and not infos["manyview.losses"].registered
    assert infos["manyview.distillation"].status == "loaded"
    assert plugins.plugin_manager().is_blocked("manyview.losses")
    assert "infonce" not in manyview.available("loss") and "kd" in manyview.available("loss")
    with pytest.raises(manyview.UnknownNameError, match="infonce"):
        manyview.create("loss", "infonce")


def test_disabling_the_core_distribution_disables_every_builtin(fresh_plugins, monkeypatch):
    monkeypatch.setenv("MANYVIEW_DISABLE_PLUGINS", "manyview")
    plugins.reload()
    assert {p.status for p in manyview.plugins() if p.builtin} == {"disabled"}
    assert manyview.available("loss") == []


def test_a_disabled_name_blocks_an_in_process_plugin_too(fresh_plugins, monkeypatch):
    monkeypatch.setenv("MANYVIEW_DISABLE_PLUGINS", "good")
    plugins.reload()
    info = plugins.register_plugin(_GoodPlugin(), name="good")
    assert info.status == "disabled" and "tiny_loss" not in manyview.available("loss")


def test_staged_registration_keeps_nothing_when_a_later_hook_raises(fresh_plugins):
    class SecondHookRaises:
        @manyview.hookimpl
        def manyview_register_views(self, register):  # views are collected before losses
            register("staged_view", lambda: "view", modality="image")

        @manyview.hookimpl
        def manyview_register_losses(self, register):
            register("staged_loss", lambda: None)
            raise RuntimeError("second hook fails")

        @manyview.hookimpl
        def manyview_train_start(self, trainer):
            raise AssertionError("a failed plugin takes no part in lifecycle hooks")

    info = plugins.register_plugin(SecondHookRaises(), name="second")
    assert info.status == "failed" and "second hook fails" in info.error
    assert info.registered == {}
    assert "staged_view" not in manyview.available("view")
    assert "staged_loss" not in manyview.available("loss")
    assert plugins.plugin_manager().get_plugin("second") is None  # unregistered again
    assert plugins.call_hook("manyview_train_start", trainer=None) == []


def test_a_plugin_name_is_taken_once(fresh_plugins):
    assert plugins.register_plugin(_GoodPlugin(), name="good").status == "loaded"
    second = plugins.register_plugin(_GoodPlugin(), name="good")
    assert second.status == "failed" and "already registered as 'good'" in second.error
    assert manyview.create("loss", "tiny_loss").tag == ("tiny", 1.0)  # the first still works


def test_tracing_and_monitoring_see_registration_hooks(fresh_plugins):
    pm = plugins.plugin_manager()
    traced: list[str] = []
    pm.trace.root.setwriter(traced.append)
    undo_tracing = pm.enable_tracing()
    monitored: list[tuple[str, list[str]]] = []
    undo_monitoring = pm.add_hookcall_monitoring(
        lambda hook, impls, kwargs: monitored.append((hook, [i.plugin_name for i in impls])),
        lambda outcome, hook, impls, kwargs: None,
    )
    try:
        plugins.register_plugin(_GoodPlugin(), name="good")
    finally:
        undo_monitoring()
        undo_tracing()
        pm.trace.root.setwriter(None)
    assert ("manyview_register_losses", ["good"]) in monitored
    assert ("manyview_register_views", ["good"]) in monitored
    assert any("manyview_register_losses" in line for line in traced)


def test_a_registration_hookwrapper_wraps_each_plugins_call(fresh_plugins):
    wrapped: list[str] = []

    class Wrapper:
        @manyview.hookimpl(wrapper=True)
        def manyview_register_losses(self, register):
            wrapped.append("before")
            yield
            wrapped.append("after")

    plugins.register_plugin(Wrapper(), name="wrapper")
    info = plugins.register_plugin(_GoodPlugin(), name="good")
    assert info.status == "loaded" and wrapped == ["before", "after"]


def test_lifecycle_hooks_reach_plugins(seen):
    hook = plugins.plugin_manager().hook
    hook.manyview_train_start(trainer="t")
    hook.manyview_step_end(trainer="t", step=3, metrics={"loss": 1.5})
    hook.manyview_checkpoint_saved(trainer="t", path="/ckpt")
    hook.manyview_train_end(trainer="t")
    assert seen == [("start", "t"), ("step", 3, 1.5), ("ckpt", "/ckpt"), ("end", "t")]


def test_hookimpl_with_wrong_argument_is_reported(fresh_plugins):
    class Wrong:
        @manyview.hookimpl
        def manyview_register_losses(self, registr):  # misspelt argument
            registr("x", lambda: 1)

    info = plugins.register_plugin(Wrong(), name="wrong")
    assert info.status == "failed"
    assert "registr" in info.error


def _registers_one(kind: str, modality: str | None):
    """A hook implementation registering ``k_<kind>`` through the kind's hook
    (``manyview_register_views``, ..., ``manyview_register_losses``, ...)."""
    meta = {"modality": modality} if modality else {}
    plural = kind + ("es" if kind.endswith("s") else "s")

    @manyview.hookimpl(specname=f"manyview_register_{plural}")
    def register_one(self, register):
        register(f"k_{kind}", (lambda: _Tagged(kind)) if kind == "loss" else (lambda: kind), **meta)

    return register_one


def test_every_kind_registers_through_its_hook(fresh_plugins):
    modality = {"view": "image", "encoder": "audio", "reader": "audio"}
    hooks = {f"register_{k}": _registers_one(k, modality.get(k)) for k in manyview.KINDS}
    AllKinds = type("AllKinds", (), hooks)  # one plugin implementing every registration hook
    info = plugins.register_plugin(AllKinds(), name="allkinds")
    assert info.status == "loaded", info.error
    assert list(info.registered) == list(manyview.KINDS)
    for kind in manyview.KINDS:
        made = manyview.create(kind, f"k_{kind}")
        assert (made.tag if kind == "loss" else made) == kind
        assert info.registered[kind] == [f"k_{kind}"]


@pytest.mark.parametrize("var", ["MANYVIEW_DISABLE_PLUGINS", "MANYVIEW_LOAD_PLUGINS"])
def test_unknown_names_in_the_plugin_variables_are_warned_about_once(
    var, fresh_plugins, monkeypatch, capsys
):
    monkeypatch.setenv(var, "manyview-speach, manyview-vision")
    plugins.reload()
    manyview.available("loss")
    manyview.available("view")  # loaded once: warned once
    lines = [x for x in capsys.readouterr().err.splitlines() if var in x]
    assert len(lines) == 1, lines
    assert lines[0].startswith(
        f"manyview: {var} names 'manyview-speach', which is no installed plugin or "
        "distribution; did you mean 'manyview-speech'"
    )
    assert lines[0].endswith("(`manyview plugins` lists them)")
    status = {p.distribution: p.status for p in plugins.plugins() if not p.builtin}
    disabling = var == "MANYVIEW_DISABLE_PLUGINS"  # the known name still works
    assert status["manyview-vision"] == ("disabled" if disabling else "loaded")
    assert status["manyview-speech"] == ("loaded" if disabling else "disabled")


def test_a_builtin_named_in_the_load_list_is_explained(fresh_plugins, monkeypatch, capsys):
    monkeypatch.setenv("MANYVIEW_LOAD_PLUGINS", "manyview.losses")
    plugins.reload()
    assert "infonce" in manyview.available("loss")
    err = capsys.readouterr().err
    assert "MANYVIEW_LOAD_PLUGINS names 'manyview.losses', which is a built-in" in err


def test_known_names_in_the_plugin_variables_are_not_warned_about(
    fresh_plugins, monkeypatch, capsys
):
    monkeypatch.setenv("MANYVIEW_DISABLE_PLUGINS", "manyview.teachers,manyview-text")
    plugins.reload()
    manyview.available("loss")
    assert "MANYVIEW_" not in capsys.readouterr().err
