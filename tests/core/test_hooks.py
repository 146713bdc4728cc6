"""One test per hook (``test_hook_<name>``), and ``manager.call_hook``: each plugin on its
own, in pluggy's order, a failing one reported once."""

from __future__ import annotations

from pathlib import Path

import pytest

import manyview
from manyview import manager


def _registers(hook: str, kind: str, **meta: object) -> None:
    """Register one in-process plugin implementing ``hook`` and check what it registered."""

    def factory(**options: object) -> object:
        """A factory from a test."""
        if kind == "loss":  # a loss factory must make an nn.Module
            from torch import nn

            made = nn.Identity()
            made.made = (kind, options)
            return made
        return kind, options

    class Plugin:
        @manyview.hookimpl(specname=hook)
        def register_it(self, register):
            register(f"hook_{kind}", factory, **meta)

    info = manager.register_plugin(Plugin(), name=f"plugin_{kind}", distribution="dist-hooks")
    assert info.status == "loaded", info.error
    assert info.registered == {kind: [f"hook_{kind}"]}
    assert f"hook_{kind}" in manyview.available(kind)
    found = manyview.entry(kind, f"dist-hooks:hook_{kind}")
    assert found.summary == "A factory from a test." and found.modality == meta.get("modality")
    made = manyview.create(kind, f"hook_{kind}", a=1)
    assert (made.made if kind == "loss" else made) == (kind, {"a": 1})


def test_hook_manyview_register_views(fresh_plugins):
    _registers("manyview_register_views", "view", modality="image")


def test_hook_manyview_register_encoders(fresh_plugins):
    _registers("manyview_register_encoders", "encoder", modality="audio")


def test_hook_manyview_register_teachers(fresh_plugins):
    _registers("manyview_register_teachers", "teacher")


def test_hook_manyview_register_losses(fresh_plugins):
    _registers("manyview_register_losses", "loss")


def test_hook_manyview_register_datasets(fresh_plugins):
    _registers("manyview_register_datasets", "dataset")


def test_hook_manyview_register_benchmarks(fresh_plugins):
    _registers("manyview_register_benchmarks", "benchmark")


def test_hook_manyview_register_recipes(fresh_plugins):
    _registers("manyview_register_recipes", "recipe")


def test_hook_manyview_register_configs(fresh_plugins, tmp_path):
    path = tmp_path / "shipped.toml"
    path.write_text('[data]\nname = "synthetic"\n')

    class Configs:
        @manyview.hookimpl
        def manyview_register_configs(self, register):
            register("shipped", lambda: path, summary="a configuration a plugin ships")

    assert manager.register_plugin(Configs(), name="configs").status == "loaded"
    assert "shipped" in manyview.available("configs")
    found = manyview.create("config", "shipped")
    assert isinstance(found, Path) and found.read_text().startswith("[data]")


def test_hook_manyview_register_readers(fresh_plugins, tmp_path):
    def read_text(sample_rate: int = 8000):
        """Read a file as (sample rate, text)."""
        return lambda path: (sample_rate, Path(path).read_text())

    class Readers:
        @manyview.hookimpl
        def manyview_register_readers(self, register):
            register("wavish", read_text, modality="audio", suffixes=(".wav", ".flac"))

    assert manager.register_plugin(Readers(), name="readers").status == "loaded"
    found = manyview.entry("reader", "wavish")
    assert found.modality == "audio" and found.meta["suffixes"] == (".wav", ".flac")
    (tmp_path / "a.wav").write_text("hello")
    read = manyview.create("reader", "wavish", sample_rate=16000)
    assert read(tmp_path / "a.wav") == (16000, "hello")
    with pytest.raises(TypeError, match="did you mean 'sample_rate'"):
        manyview.create("reader", "wavish", sample_rat=16000)


def test_a_reader_must_name_its_modality(fresh_plugins):
    class Reader:
        @manyview.hookimpl
        def manyview_register_readers(self, register):
            register("nomodality", "some.module:read")

    info = manager.register_plugin(Reader(), name="reader")
    assert info.status == "failed" and "modality" in info.error


def test_hook_manyview_train_start(seen):
    assert manager.call_hook("manyview_train_start", trainer="t") == []
    assert seen == [("start", "t")]


def test_hook_manyview_step_end(seen):
    assert manager.call_hook("manyview_step_end", trainer="t", step=3, metrics={"loss": 1.5}) == []
    assert seen == [("step", 3, 1.5)]


def test_hook_manyview_checkpoint_saved(seen):
    assert manager.call_hook("manyview_checkpoint_saved", trainer="t", path="/ckpt") == []
    assert seen == [("ckpt", "/ckpt")]


def test_hook_manyview_train_end(seen):
    assert manager.call_hook("manyview_train_end", trainer="t") == []
    assert seen == [("end", "t")]


def test_a_raising_plugin_is_reported_once_and_the_others_run_in_pluggy_order(
    fresh_plugins, capsys
):
    order: list[str] = []

    def plugin(label: str, raises: bool = False, **opts: bool) -> object:
        class Plugin:
            @manyview.hookimpl(**opts)
            def manyview_step_end(self, trainer, step, metrics):
                order.append(label)
                if raises:
                    raise RuntimeError(f"{label} crashed at step {step}")

        return Plugin()

    manager.register_plugin(plugin("first", tryfirst=True), name="first")
    manager.register_plugin(plugin("broken", raises=True), name="broken")
    manager.register_plugin(plugin("plain"), name="plain")
    manager.register_plugin(plugin("last", trylast=True), name="last")
    reported: set[str] = set()
    for step in (1, 2):
        failures = manager.call_hook(
            "manyview_step_end", reported=reported, trainer=None, step=step, metrics={}
        )
        assert [(name, str(exc)) for name, exc in failures] == [
            ("broken", f"broken crashed at step {step}")
        ]
    # pluggy's order: tryfirst first, then the last registered first, trylast at the end
    assert order == ["first", "plain", "broken", "last"] * 2
    assert reported == {"broken:manyview_step_end"}
    err = capsys.readouterr().err
    assert err.count("failed in manyview_step_end") == 1
    assert "plugin 'broken' failed in manyview_step_end: RuntimeError: broken crashed" in err


def test_call_hook_without_reported_prints_nothing(fresh_plugins, capsys):
    class Broken:
        @manyview.hookimpl
        def manyview_train_end(self, trainer):
            raise ValueError("no")

    manager.register_plugin(Broken(), name="broken")
    [(name, exc)] = manager.call_hook("manyview_train_end", trainer=None)
    assert name == "broken" and isinstance(exc, ValueError)
    assert capsys.readouterr().err == ""


def test_a_lifecycle_hookwrapper_runs(fresh_plugins, seen):
    wrapped: list[str] = []

    class OldStyle:
        @manyview.hookimpl(hookwrapper=True)
        def manyview_train_start(self, trainer):
            wrapped.append("old before")
            yield
            wrapped.append("old after")

    class NewStyle:
        @manyview.hookimpl(wrapper=True)
        def manyview_train_start(self, trainer):
            wrapped.append("new before")
            result = yield
            wrapped.append("new after")
            return result

    manager.register_plugin(OldStyle(), name="old")
    manager.register_plugin(NewStyle(), name="new")
    assert manager.call_hook("manyview_train_start", trainer="t") == []
    assert seen == [("start", "t")]
    assert wrapped == ["new before", "old before", "old after", "new after"]


def test_call_hook_can_call_one_plugin(seen, lifecycle_recorder):
    manager.register_plugin(lifecycle_recorder(seen), name="another")
    manager.call_hook("manyview_train_end", plugin="another", trainer="only")
    assert seen == [("end", "only")]


def test_call_hook_rejects_unknown_hooks_and_missing_arguments(fresh_plugins):
    with pytest.raises(ValueError, match="did you mean 'manyview_step_end'"):
        manager.call_hook("manyview_stepend", trainer=None)
    with pytest.raises(TypeError, match=r"needs the argument.*step, metrics"):
        manager.call_hook("manyview_step_end", trainer=None)


def _raiser(exc: BaseException, calls: list[int]) -> object:
    """A plugin whose ``manyview_step_end`` records the step and raises ``exc``."""

    class Raiser:
        @manyview.hookimpl
        def manyview_step_end(self, trainer, step, metrics):
            calls.append(step)
            raise exc

    return Raiser()


def test_a_plugin_calling_sys_exit_is_its_failure_not_the_callers(fresh_plugins, capsys):
    calls: list[int] = []
    manager.register_plugin(_raiser(SystemExit(3), calls), name="exiter")
    reported: set[str] = set()
    [(name, exc)] = manager.call_hook(
        "manyview_step_end", reported=reported, trainer=None, step=1, metrics={}
    )
    assert name == "exiter" and isinstance(exc, SystemExit) and calls == [1]
    assert "plugin 'exiter' failed in manyview_step_end: SystemExit: 3" in capsys.readouterr().err


def test_keyboard_interrupt_from_a_hook_is_contained_only_when_asked(fresh_plugins):
    calls: list[int] = []
    manager.register_plugin(_raiser(KeyboardInterrupt(), calls), name="interrupter")
    with pytest.raises(KeyboardInterrupt):
        manager.call_hook("manyview_step_end", trainer=None, step=1, metrics={})
    [(name, exc)] = manager.call_hook(
        "manyview_step_end", contain_exits=True, trainer=None, step=2, metrics={}
    )
    assert name == "interrupter" and isinstance(exc, KeyboardInterrupt)
    assert (
        manager.call_hook(
            "manyview_step_end", skip={"interrupter"}, trainer=None, step=3, metrics={}
        )
        == []
    )
    assert calls == [1, 2]


def test_hook_guard_disables_a_plugin_after_repeated_failures(fresh_plugins, seen, capsys):
    calls: list[int] = []
    manager.register_plugin(_raiser(RuntimeError("disk full"), calls), name="flaky")
    guard = manager.HookGuard(max_failures=3)
    for step in range(1, 6):
        guard.call("manyview_step_end", trainer=None, step=step, metrics={"loss": 0.0})
    assert calls == [1, 2, 3]  # not called after its third failure
    assert [s for s in seen if s[0] == "step"] == [("step", n, 0.0) for n in range(1, 6)]
    assert guard.disabled == {"flaky"} and guard.failures == {"flaky": 3}
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "manyview: plugin 'flaky' failed in manyview_step_end: RuntimeError: disk full",
        "manyview: plugin 'flaky' failed 3 times (last in manyview_step_end: RuntimeError: "
        "disk full); its hooks are disabled for the rest of this run. Fix the plugin, or set "
        "MANYVIEW_DISABLE_PLUGINS=flaky to run without it",
    ]
