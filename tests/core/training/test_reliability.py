"""Bad inputs and failures of ``manyview train``: each one exit code and one line on
stderr that names the problem and the fix, never a traceback."""

from __future__ import annotations

import json

import pytest

from manyview.cli import main
from manyview.config import load_config
from manyview.training.trainer import Trainer


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    """The single ``manyview ...:`` line on stderr (progress lines may precede it)."""
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = [x for x in err.splitlines() if x.startswith("manyview ")]
    assert len(lines) == 1, err
    return lines[0]


# ------------------------------------------------------------------ the command line


def test_a_config_that_is_not_utf8_is_one_line_naming_the_file(tmp_path, capsys):
    path = tmp_path / "latin1.toml"
    path.write_bytes("[run]\n# caf\xe9\nsteps = 2\n".encode("latin-1"))
    assert main(["train", str(path), "--out", str(tmp_path / "run")]) == 2
    line = _one_line_error(capsys)
    assert str(path) in line and "UTF-8" in line


def test_ctrl_c_before_training_starts_exits_130_with_one_line(
    tiny_config, tmp_path, capsys, monkeypatch
):
    import manyview.config

    def interrupted(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(manyview.config, "load_config", interrupted)
    assert main(["train", str(tiny_config()), "--out", str(tmp_path / "run")]) == 130
    assert "interrupted" in _one_line_error(capsys)


# ------------------------------------------------------------------ non-finite embeddings


@pytest.mark.parametrize("sets", [[], ["run.gradcache_chunk=4"]], ids=["plain", "gradcache"])
def test_diverging_embeddings_are_skipped_then_stop_with_a_checkpoint(
    tiny_config, tmp_path, capsys, sets
):
    out = tmp_path / "run"
    argv = ["train", str(tiny_config(steps=8)), "--out", str(out), "--set", "optimizer.lr=1e30"]
    argv += ["--set", "run.max_bad_steps=3", *(x for s in sets for x in ("--set", s))]
    assert main(argv) == 1
    line = _one_line_error(capsys)
    assert "embeddings were not finite for 3 steps in a row" in line
    assert "Last checkpoint" in line and "lower optimizer.lr" in line
    assert (out / "checkpoints" / "step-4").is_dir()  # step 1 trained, steps 2-4 skipped


def test_diverging_embeddings_never_reach_the_loss(tiny_config, tmp_path, monkeypatch):
    """The strategy checks the embeddings itself: the objective is never called on NaN."""
    import manyview

    recipe = manyview.entry("recipe", "contrastive").load()
    original, seen = recipe.objective, []

    def spy(self, z, batch, views):
        seen.append(bool(z.isfinite().all()))
        return original(self, z, batch, views)

    monkeypatch.setattr(recipe, "objective", spy)
    config = load_config(tiny_config(steps=4), ["optimizer.lr=1e30", "run.max_bad_steps=10"])
    trainer = Trainer(config, tmp_path / "run", progress=False)
    trainer.fit()
    assert trainer.bad_steps == 3 and trainer.strategy.skipped == "embeddings"
    assert seen == [True]  # step 1 only


# ------------------------------------------------------------------ data.drop_last = false


def test_the_sampler_merges_a_too_small_tail_into_the_batch_before():
    from manyview.training.sampler import EpochBatchSampler

    sampler = EpochBatchSampler(10, 3, drop_last=False)  # 3 + 3 + 3 + 1
    assert sampler.merged_tail == 1 and sampler.batches_per_epoch() == 3
    batches = [b for _, b in zip(range(3), iter(sampler), strict=False)]
    assert [len(b) for b in batches] == [3, 3, 4]
    assert sorted(i for b in batches for i in b) == list(range(10))  # every sample once
    kept = EpochBatchSampler(11, 3, drop_last=False)  # a tail of 2 is a batch of its own
    assert kept.merged_tail == 0 and kept.batches_per_epoch() == 4
    two = EpochBatchSampler(13, 2, drop_last=False, rank=1, world_size=2)  # tail 1 < 2 ranks·2
    assert two.merged_tail == 1 and two.batches_per_epoch() == 3


def test_drop_last_false_with_a_tail_of_one_trains_through_it(tiny_config, tmp_path, capsys):
    out = tmp_path / "run"
    # 256 samples in batches of 17: 15 full batches and a tail of 1, the 16th step
    sets = ["data.drop_last=false", "run.batch_size=17", "run.steps=17", "run.log_every=1"]
    argv = ["train", str(tiny_config(steps=17)), "--out", str(out)]
    assert main([*argv, *(x for s in sets for x in ("--set", s))]) == 0
    err = capsys.readouterr().err
    assert err.count("merged into the batch before it") == 1 and "Traceback" not in err


def test_a_batch_larger_than_the_dataset_is_one_line(tiny_config, tmp_path, capsys):
    argv = ["train", str(tiny_config()), "--out", str(tmp_path / "run")]
    assert main([*argv, "--set", "run.batch_size=1000"]) == 2
    line = _one_line_error(capsys)
    assert "run] batch_size = 1000" in line and "at most 256" in line


# ------------------------------------------------------------------ run folders


def _train(argv, capsys):
    code = main(["train", *argv])
    return code, capsys.readouterr().err


def test_a_new_run_refuses_a_folder_whose_run_died_before_its_first_checkpoint(
    tiny_config, tmp_path, capsys
):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.toml").write_text("# an earlier run's\n")
    (out / "metrics.jsonl").write_text('{"step": 1, "loss": 1.0}\n')
    assert main(["train", str(tiny_config(steps=2)), "--out", str(out)]) == 2
    line = _one_line_error(capsys)
    assert "already holds a run" in line and f"--resume {out}" in line
    assert (out / "metrics.jsonl").read_text() == '{"step": 1, "loss": 1.0}\n'  # untouched
    assert (out / "config.toml").read_text() == "# an earlier run's\n"


def test_resume_restarts_a_run_that_died_before_its_first_checkpoint(tiny_config, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", str(tiny_config(steps=4, every=4)), "--out", str(out)]) == 0
    import shutil

    shutil.rmtree(out / "checkpoints")  # as if killed before step 4's checkpoint
    (out / "metrics.jsonl").write_text('{"step": 2, "loss": 9.0}\n')
    capsys.readouterr()
    assert main(["train", "--resume", str(out)]) == 0
    assert "starts again from step 0" in capsys.readouterr().err
    steps = [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 4]  # one run's lines only


def _out_is_a_file(tmp):
    (tmp / "run").write_text("x")
    return tmp / "run"


def _parent_is_a_file(tmp):
    (tmp / "f").write_text("x")
    return tmp / "f" / "run"


def _metrics_is_a_folder(tmp):
    (tmp / "run" / "metrics.jsonl").mkdir(parents=True)
    return tmp / "run"


def _checkpoints_is_a_file(tmp):
    (tmp / "run").mkdir()
    (tmp / "run" / "checkpoints").write_text("")
    return tmp / "run"


@pytest.mark.parametrize(
    "make, expected",
    [
        (_out_is_a_file, "is a file, not a folder"),
        (_parent_is_a_file, "is a file, not a folder"),
        (_metrics_is_a_folder, "should be a file"),
        (_checkpoints_is_a_file, "should be a folder"),
    ],
    ids=["out-is-a-file", "parent-is-a-file", "metrics-is-a-folder", "checkpoints-is-a-file"],
)
def test_bad_output_folders_are_one_line_before_training(
    tiny_config, tmp_path, capsys, make, expected
):
    out = make(tmp_path)
    assert main(["train", str(tiny_config(steps=2)), "--out", str(out)]) == 2
    line = _one_line_error(capsys)
    assert (expected in line and "--out" in line) or "move it away" in line


def test_a_read_only_out_is_one_line(tiny_config, tmp_path, capsys, monkeypatch):
    import manyview.training.rundir as rundir

    monkeypatch.setattr(rundir.os, "access", lambda path, mode: False)  # as a non-root user
    assert main(["train", str(tiny_config(steps=2)), "--out", str(tmp_path / "run")]) == 2
    assert "is not writable" in _one_line_error(capsys)


def test_checkpoints_last_of_the_wrong_type_is_one_line(tiny_config, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", str(tiny_config(steps=4, every=4)), "--out", str(out)]) == 0
    last = out / "checkpoints" / "last"
    last.unlink()
    last.mkdir()
    capsys.readouterr()
    assert main(["train", "--resume", str(out)]) == 2
    assert "should be a link" in _one_line_error(capsys)


def test_an_oserror_during_training_is_one_line_naming_the_last_checkpoint(
    tiny_config, tmp_path, capsys, monkeypatch
):
    out = tmp_path / "run"
    config = load_config(tiny_config(steps=8, every=2))
    trainer = Trainer(config, out, progress=False)
    log = Trainer._log

    def failing(self, metrics, progress):
        if self.step >= 6:
            raise OSError(28, "No space left on device", str(out / "metrics.jsonl"))
        log(self, metrics, progress)

    monkeypatch.setattr(Trainer, "_log", failing)
    from manyview.training.errors import TrainingError

    with pytest.raises(TrainingError) as info:
        trainer.fit()
    message = str(info.value)
    assert "No space left on device" in message and "metrics.jsonl" in message
    assert "last checkpoint kept is" in message and "step-4" in message
    assert "\n" not in message


# ------------------------------------------------------------------ resume


@pytest.fixture
def finished(tiny_config, tmp_path, capsys):
    """A finished 4-step run with checkpoints at steps 2 and 4."""
    out = tmp_path / "run"
    assert main(["train", str(tiny_config(steps=4, every=2)), "--out", str(out)]) == 0
    capsys.readouterr()
    return out


def test_resuming_a_finished_run_says_so(finished, capsys):
    assert main(["train", "--resume", str(finished)]) == 0
    err = capsys.readouterr().err
    assert "has already finished (step 4 of 4)" in err and "manyview bench" in err


def test_resuming_with_a_changed_model_is_one_line(finished, capsys):
    argv = ["--resume", str(finished), "--set", "modalities.a.encoder_options.hidden_dim=24"]
    code, err = _train(argv, capsys)
    assert code == 1 and "Traceback" not in err
    line = next(x for x in err.splitlines() if x.startswith("manyview"))
    assert "does not fit this run's recipe" in line and "another --out" in line


def test_resuming_with_a_changed_config_warns(finished, capsys):
    argv = ["--resume", str(finished), "--set", "run.steps=6", "--set", "run.seed=4"]
    code, err = _train(argv, capsys)
    assert code == 0, err
    assert "changed configuration" in err and "run.seed: 3 -> 4" in err
    assert "no longer an exact continuation" in err


def test_a_corrupt_newest_checkpoint_falls_back_to_the_previous(finished, capsys):
    (finished / "checkpoints" / "step-4" / "state.pt").write_bytes(b"not a checkpoint")
    code, err = _train(["--resume", str(finished)], capsys)
    assert code == 0, err
    assert "cannot read checkpoint" in err and "resuming from the previous checkpoint" in err
    assert "step-2" in err and "Traceback" not in err


def test_a_state_with_missing_keys_is_one_line_naming_the_file(finished, capsys):
    import torch

    for step in (2, 4):
        path = finished / "checkpoints" / f"step-{step}" / "state.pt"
        state = torch.load(path, weights_only=True)
        del state["batches_consumed"]
        torch.save(state, path)
    code, err = _train(["--resume", str(finished), "--set", "run.steps=6"], capsys)
    assert code == 1 and "Traceback" not in err
    line = next(x for x in err.splitlines() if x.startswith("manyview"))
    assert "step-4/state.pt lacks 'batches_consumed'" in line


def test_an_incomplete_step_folder_is_removed_on_resume(finished, capsys):
    (finished / "checkpoints" / "step-1").mkdir()  # cut while being pruned by kill -9
    (finished / "checkpoints" / ".trash-step-0-1").mkdir()
    code, err = _train(["--resume", str(finished), "--set", "run.steps=6"], capsys)
    assert code == 0, err
    names = sorted(p.name for p in (finished / "checkpoints").iterdir())
    assert names == ["last", "step-4", "step-6"]


def test_pruning_never_leaves_a_half_removed_step_folder(tmp_path, monkeypatch):
    """A kill during pruning leaves a ``.trash-*`` folder (removed later), never a
    ``step-K/`` without its files."""
    import shutil
    import types

    import torch

    from manyview.training import checkpoint

    root = tmp_path / "ckpt"
    weights = {"w": torch.zeros(2)}
    for step in (1, 2):
        checkpoint.save_checkpoint(root, step, weights, {"step": step}, keep=2)

    def killed(path, ignore_errors=False):
        raise KeyboardInterrupt  # as if killed in the middle of rmtree

    monkeypatch.setattr(checkpoint, "shutil", types.SimpleNamespace(rmtree=killed))
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save_checkpoint(root, 3, weights, {"step": 3}, keep=2)
    monkeypatch.setattr(checkpoint, "shutil", shutil)
    assert not (root / "step-1").exists()
    assert [p.name for p in checkpoint.list_checkpoints(root)] == ["step-2", "step-3"]
    assert checkpoint.clean_partial(root)  # removes the .trash-step-1-* folder
    assert sorted(p.name for p in root.iterdir()) == ["last", "step-2", "step-3"]


# ------------------------------------------------------------------ configuration values

BAD_VALUES = [
    (
        "run.device='gpu'",
        "device = 'gpu' is not 'cpu', 'cuda', 'cuda:N' or 'mps'; did you mean 'cuda'?",
    ),
    (
        "run.seed=18446744073709551616",
        "seed must be in [-9223372036854775808, 9223372036854775807]",
    ),
    ("optimizer.lr=nan", "[optimizer] lr must be a finite number, got nan"),
    ("optimizer.lr=inf", "[optimizer] lr must be a finite number, got inf"),
    ("losses.1.weight=nan", "[[losses]] #2 weight must be a finite number"),
    ("optimizer.betas=[0.9, 1.5]", "betas[1] must be in [0, 1), got 1.5"),
    ("optimizer.betas=[0.9]", "betas must be two numbers"),
    ("optimizer.momentum=5", "momentum must be in [0, 1), got 5.0"),
    ("schedule.min_lr_ratio=10", "min_lr_ratio must be in [0, 1], got 10.0"),
    ('teacher={ name = "ema" }', "[teacher] is set, but the 'contrastive' recipe uses no teacher"),
]


@pytest.mark.parametrize(("override", "expected"), BAD_VALUES, ids=[b[0] for b in BAD_VALUES])
def test_bad_values_are_one_line(tiny_config, tmp_path, capsys, override, expected):
    out = tmp_path / "run"
    assert main(["train", str(tiny_config(steps=2)), "--out", str(out), "--set", override]) == 2
    assert expected in _one_line_error(capsys)
    assert not (out / "checkpoints").exists()


def test_a_cuda_device_without_cuda_is_one_line(tiny_config, tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    argv = ["train", str(tiny_config(steps=2)), "--out", str(tmp_path / "run")]
    assert main([*argv, "--set", "run.device='cuda'"]) == 2
    line = _one_line_error(capsys)
    assert "torch sees no CUDA device" in line and 'device = "cpu"' in line


def test_the_largest_seeds_train(tiny_config, tmp_path):
    for seed in (2**63 - 1, -(2**63)):
        config = load_config(tiny_config(steps=1), [f"run.seed={seed}"])
        Trainer(config, tmp_path / str(seed), progress=False).fit()
