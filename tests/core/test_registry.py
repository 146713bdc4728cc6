"""The registry: names, lookups, errors, and plugins registered in-process."""

from __future__ import annotations

import pytest

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
    with pytest.raises(ValueError, match="modality"):
        make_entry("reader", "audio", "a.b:C", "p")
    with pytest.raises(ValueError, match="not valid"):
        make_entry("loss", "a:b", "a.b:C", "p")
    with pytest.raises(ValueError, match="module:Attr"):
        make_entry("loss", "x", "no_colon", "p")
    with pytest.raises(TypeError, match="factory"):
        make_entry("loss", "x", 42, "p")


def test_summary_defaults_to_docstring_first_line():
    class Thing:
        """First line.

        More text."""

    assert make_entry("loss", "thing", Thing, "p").summary == "First line."


def test_ambiguous_name_names_both_distributions():
    reg = Registry()
    reg.add(make_entry("loss", "same", "a.m:A", "dist-a"))
    reg.add(make_entry("loss", "same", "b.m:B", "dist-b"))
    with pytest.raises(manyview.AmbiguousNameError) as info:
        reg.get("loss", "same")
    assert "dist-a" in str(info.value) and "dist-b" in str(info.value)
    assert reg.get("loss", "dist-b:same").factory == "b.m:B"
    assert reg.names("loss") == ["dist-a:same", "dist-b:same"]


def test_factory_that_fails_to_import_gives_clear_error():
    entry = make_entry("loss", "ghost", "no_such_module_xyz:Loss", "ghost-dist")
    with pytest.raises(manyview.FactoryLoadError, match="ghost-dist"):
        entry.load()


class _GoodPlugin:
    @manyview.hookimpl
    def manyview_register_losses(self, register):
        register("tiny_loss", lambda scale=1.0: ("tiny", scale), summary="a tiny loss")

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
    assert manyview.create("loss", "tiny_loss", scale=2.0) == ("tiny", 2.0)
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
            register("shared", lambda: "a")

    class B:
        @manyview.hookimpl
        def manyview_register_losses(self, register):
            register("shared", lambda: "b")

    plugins.register_plugin(A(), name="a", distribution="dist-a")
    plugins.register_plugin(B(), name="b", distribution="dist-b")
    with pytest.raises(manyview.AmbiguousNameError, match="dist-a:shared"):
        manyview.create("loss", "shared")
    assert manyview.create("loss", "dist-b:shared") == "b"


def test_builtins_are_reported_as_plugins():
    infos = {p.name: p for p in manyview.plugins()}
    losses = infos["manyview.default_plugins.losses"]
    assert losses.builtin and losses.status == "loaded" and losses.distribution == "manyview"
    assert "mv_dhel" in losses.registered["loss"]


def test_lifecycle_hooks_reach_plugins(fresh_plugins):
    seen = []

    class Recorder:
        @manyview.hookimpl
        def manyview_train_start(self, trainer):
            seen.append(("start", trainer))

        @manyview.hookimpl
        def manyview_step_end(self, trainer, step, metrics):
            seen.append(("step", step, metrics["loss"]))

        @manyview.hookimpl
        def manyview_checkpoint_saved(self, trainer, path):
            seen.append(("ckpt", path))

        @manyview.hookimpl
        def manyview_train_end(self, trainer):
            seen.append(("end", trainer))

    plugins.register_plugin(Recorder(), name="recorder")
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


def test_every_kind_registers_through_its_hook(fresh_plugins):
    class AllKinds:
        @manyview.hookimpl
        def manyview_register_views(self, register):
            register("k_view", lambda: "view", modality="image")

        @manyview.hookimpl
        def manyview_register_encoders(self, register):
            register("k_encoder", lambda: "encoder", modality="audio")

        @manyview.hookimpl
        def manyview_register_teachers(self, register):
            register("k_teacher", lambda: "teacher")

        @manyview.hookimpl
        def manyview_register_losses(self, register):
            register("k_loss", lambda: "loss")

        @manyview.hookimpl
        def manyview_register_datasets(self, register):
            register("k_dataset", lambda: "dataset")

        @manyview.hookimpl
        def manyview_register_benchmarks(self, register):
            register("k_benchmark", lambda: "benchmark")

        @manyview.hookimpl
        def manyview_register_recipes(self, register):
            register("k_recipe", lambda: "recipe")

        @manyview.hookimpl
        def manyview_register_configs(self, register):
            register("k_config", lambda: "config")

        @manyview.hookimpl
        def manyview_register_readers(self, register):
            register("k_reader", lambda: "reader", modality="image")

    info = plugins.register_plugin(AllKinds(), name="allkinds")
    assert info.status == "loaded", info.error
    for kind in manyview.KINDS:
        assert manyview.create(kind, f"k_{kind}") == kind
        assert info.registered[kind] == [f"k_{kind}"]
