"""The trainer: outputs, resume, faults, hooks, recipes."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file

import manyview
from manyview import manager
from manyview.cli import main
from manyview.config import load_config
from manyview.training.checkpoint import load_checkpoint
from manyview.training.trainer import Trainer, TrainingError


def test_train_writes_the_run_directory(tiny_config, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", str(tiny_config()), "--out", str(out)]) == 0
    assert "done: step 12" in capsys.readouterr().out
    resolved = load_config(out / "config.toml")  # the resolved config validates again
    assert resolved["run"]["steps"] == 12 and resolved["optimizer"]["betas"] == [0.9, 0.999]
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [2, 4, 6, 8, 10, 12]
    for row in lines:
        assert {"step", "loss", "lr", "samples_per_s"} <= set(row)
        assert math.isfinite(row["loss"]) and row["samples_per_s"] > 0
    assert {"alignment", "uniformity", "effective_rank", "loss/isogclr"} <= set(lines[1])
    ckpts = out / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["last", "step-12", "step-8"]  # keep 2
    assert (ckpts / "last").resolve().name == "step-12"
    weights, state = load_checkpoint(ckpts / "last")  # weights_only=True inside
    assert state["step"] == 12 and state["batches_consumed"] == 12
    assert "encoders.a.net.0.weight" in weights
    assert "losses.losses.isogclr.tau" in state["recipe"]  # isogclr's state is saved
    torch.load(ckpts / "last" / "state.pt", weights_only=True)


def test_refuses_to_overwrite_a_run(tiny_config, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", str(tiny_config(steps=4)), "--out", str(out)]) == 0
    assert main(["train", str(tiny_config(steps=4)), "--out", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err


def test_resume_in_process_is_bit_identical(tiny_config, tmp_path):
    config = load_config(tiny_config(steps=12, every=4))
    Trainer(config, tmp_path / "full", progress=False).fit()
    Trainer(config, tmp_path / "split", progress=False).fit(until=6)  # between checkpoints
    Trainer(config, tmp_path / "split", resume=True, progress=False).fit()
    a = load_file(tmp_path / "full/checkpoints/last/model.safetensors")
    b = load_file(tmp_path / "split/checkpoints/last/model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    _, sa = load_checkpoint(tmp_path / "full/checkpoints/last")
    _, sb = load_checkpoint(tmp_path / "split/checkpoints/last")
    key = "losses.losses.isogclr.tau"
    assert torch.equal(sa["recipe"][key], sb["recipe"][key])


def test_non_finite_steps_are_skipped_then_stop_the_run(tiny_config, tmp_path, nan_loss):
    extra = '\n[[losses]]\nname = "nan_after"\noptions = { after = 3, recover = 5 }\n'
    config = load_config(tiny_config(steps=10, extra=extra), ["run.max_bad_steps=3"])
    trainer = Trainer(config, tmp_path / "skip", progress=False)
    trainer.fit()  # two bad steps (3 and 4), then it recovers
    assert trainer.bad_steps == 2 and trainer.step == 10
    extra = '\n[[losses]]\nname = "nan_after"\noptions = { after = 3 }\n'
    config = load_config(tiny_config(steps=10, extra=extra), ["run.max_bad_steps=3"])
    trainer = Trainer(config, tmp_path / "stop", progress=False)
    with pytest.raises(TrainingError, match=r"not finite for 3 steps in a row.*lower optimizer.lr"):
        trainer.fit()
    assert (tmp_path / "stop/checkpoints/step-5").is_dir()  # a final checkpoint


def test_lifecycle_hooks_fire(tiny_config, tmp_path, fresh_plugins):
    seen = []

    class Recorder:
        @manyview.hookimpl
        def manyview_train_start(self, trainer):
            seen.append("start")

        @manyview.hookimpl
        def manyview_step_end(self, trainer, step, metrics):
            seen.append(f"step{step}")

        @manyview.hookimpl
        def manyview_checkpoint_saved(self, trainer, path):
            seen.append(f"ckpt:{path.rsplit('/', 1)[-1]}")

        @manyview.hookimpl
        def manyview_train_end(self, trainer):
            seen.append("end")

    class Broken:
        @manyview.hookimpl
        def manyview_step_end(self, trainer, step, metrics):
            raise RuntimeError("a logger crashed")

    manager.register_plugin(Recorder(), name="recorder")
    manager.register_plugin(Broken(), name="broken-logger")
    Trainer(load_config(tiny_config(steps=4, every=2)), tmp_path / "hooks", progress=False).fit()
    assert seen[0] == "start" and seen[-1] == "end"
    assert "ckpt:step-2" in seen and "ckpt:step-4" in seen
    assert [s for s in seen if s.startswith("step")] == ["step1", "step2", "step3", "step4"]


def test_four_modalities_in_one_loss(tmp_path):
    # its own configuration: four modalities of other widths, not the two of tiny_config
    text = """
[run]
steps = 40
batch_size = 32
log_every = 10
metrics_every = 0
checkpoint_every = 40
[data]
name = "synthetic"
options = { modalities = { a = 8, b = 10, c = 12, d = 6 }, num_samples = 512, num_classes = 4 }
[optimizer]
lr = 0.003
[modalities.a]
encoder = "mlp"
[modalities.b]
encoder = "mlp"
[modalities.c]
encoder = "mlp"
[modalities.d]
encoder = "mlp"
encoder_options = { output_dim = 32 }
[[losses]]
name = "mv_dhel"
options = { temperature = 0.3 }
"""
    path = tmp_path / "four.toml"
    path.write_text(text)
    trainer = Trainer(load_config(path), tmp_path / "four", progress=False)
    trainer.fit()
    lines = [json.loads(x) for x in (tmp_path / "four/metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["loss"] < lines[0]["loss"]
    z = trainer.recipe.embed(trainer.dataset.get_batch(list(range(8))), torch.Generator())
    assert z.shape == (8, 4, 32)  # 4 modalities, projected to the smallest encoder width


def test_bf16_and_grad_accumulation_and_sgd(tiny_config, tmp_path):
    config = load_config(
        tiny_config(steps=4),
        [
            'run.precision="bf16"',
            "run.grad_accum=2",
            "run.grad_clip=1.0",
            'optimizer.name="lars"',
            "optimizer.lr=0.1",
            'schedule.kind="linear"',
        ],
    )
    trainer = Trainer(config, tmp_path / "bf16", progress=False)
    metrics = trainer.fit()
    assert math.isfinite(metrics["loss"]) and trainer.batches_consumed == 8


def test_plain_progress_lines_when_not_a_tty(tiny_config, tmp_path, capsys):
    assert main(["train", str(tiny_config(steps=4)), "--out", str(tmp_path / "p")]) == 0
    err = capsys.readouterr().err
    assert "step 2/4" in err and "samples/s" in err and "eta" in err


@pytest.mark.slow
def test_torch_compile_matches_eager(tiny_config, tmp_path, run_python):
    """run.compile compiles the model's modules in place: same checkpoint names, and the
    same training within float tolerance (without dropout, whose compiled RNG differs).
    Runs in a fresh process: torch.compile's caches are process-global."""
    path = tiny_config(steps=3, every=3)
    code = f"""
import json
from manyview.config import load_config
from manyview.training.trainer import Trainer
no_dropout = ["modalities.a.encoder_options.dropout=0.0"]
a = Trainer(load_config({str(path)!r}, no_dropout), {str(tmp_path / "e")!r}, progress=False).fit()
b = Trainer(load_config({str(path)!r}, no_dropout + ["run.compile=true"]),
            {str(tmp_path / "c")!r}, progress=False).fit()
print(json.dumps([a["loss"], b["loss"]]))
"""
    result = run_python("-c", code, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    eager, compiled = json.loads(result.stdout.strip().splitlines()[-1])
    assert math.isclose(eager, compiled, rel_tol=1e-4)
    wa = load_file(tmp_path / "e/checkpoints/last/model.safetensors")
    wb = load_file(tmp_path / "c/checkpoints/last/model.safetensors")
    assert wa.keys() == wb.keys()
    assert all(torch.allclose(wa[k], wb[k], atol=1e-5) for k in wa)


@pytest.mark.parametrize(
    "exc", [SystemExit(1), KeyboardInterrupt(), RuntimeError("logger down")], ids=type
)
def test_a_plugin_hook_that_raises_anything_neither_stops_the_run_nor_its_checkpoints(
    tiny_config, tmp_path, fresh_plugins, capsys, exc
):
    calls: list[str] = []

    class Hostile:
        @manyview.hookimpl
        def manyview_train_start(self, trainer):
            calls.append("start")
            raise exc

        @manyview.hookimpl
        def manyview_step_end(self, trainer, step, metrics):
            calls.append(f"step{step}")
            raise exc

    manager.register_plugin(Hostile(), name="hostile")
    out = tmp_path / "hostile"
    trainer = Trainer(load_config(tiny_config(steps=6, every=2)), out, progress=False)
    trainer.fit()
    assert trainer.step == 6 and (out / "checkpoints/step-6").is_dir()
    assert calls == ["start", "step1", "step2"]  # disabled after its third failure
    err = capsys.readouterr().err
    name = type(exc).__name__
    assert f"plugin 'hostile' failed in manyview_train_start: {name}" in err
    assert f"plugin 'hostile' failed in manyview_step_end: {name}" in err
    assert "plugin 'hostile' failed 3 times" in err and "disabled for the rest of this run" in err
    # a resumed run is not killed by it either
    more = load_config(tiny_config(steps=8, every=2))
    Trainer(more, out, resume=True, progress=False).fit()
    assert (out / "checkpoints/step-8").is_dir()
