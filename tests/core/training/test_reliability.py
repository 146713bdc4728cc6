"""Bad inputs and failures of ``manyview train``: each one exit code and one line on
stderr that names the problem and the fix, never a traceback."""

from __future__ import annotations

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
