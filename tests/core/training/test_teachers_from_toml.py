"""Every built-in teacher trains from a TOML [teacher] table through the distill recipe, and
a distill run is benchmarked like any run: a privileged teacher built from a trained
image+text-style run teaches a student of a third modality."""

from __future__ import annotations

import json

import pytest
import torch

from manyview.cli import main
from manyview.config import load_config
from manyview.testing import tiny_run
from manyview.training.trainer import Trainer


def _run(recipe: str, log_every: int, tables: str) -> str:
    """A 40-step configuration on three synthetic modalities: the teacher run's and the
    students' (``tables``: the modalities, teacher and losses)."""
    return f"""
[run]
recipe = "{recipe}"
steps = 40
batch_size = 32
log_every = {log_every}
checkpoint_every = 40
[data]
name = "synthetic"
options = {{ modalities = {{ a = 10, b = 12, c = 14 }}, num_samples = 256, num_classes = 4 }}
[optimizer]
lr = 0.005
{tables}"""


TEACHER_RUN = _run(
    "contrastive",
    40,
    """
[modalities.a]
encoder = "mlp"
encoder_options = { output_dim = 16 }
[modalities.b]
encoder = "mlp"
encoder_options = { output_dim = 16 }
[[losses]]
name = "clip"
""",
)

STUDENT = _run(
    "distill",
    10,
    """
[modalities.c]
encoder = "mlp"
encoder_options = { output_dim = 16 }
projector_dim = 16
[teacher]
TEACHER
[[losses]]
name = "crd"
options = { temperature = 0.1 }
""",
)

TEACHERS = {  # RUN is the trained teacher run's directory
    "ema": 'name = "ema"\noptions = { momentum = 0.9 }',
    "self": 'name = "self"',
    "frozen": 'name = "frozen"\noptions = { run = "RUN", modality = "a" }',
    "privileged": 'name = "privileged"\noptions = { run = "RUN", teacher_keys = ["a", "b"] }',
    "ensemble": (
        'name = "ensemble"\noptions = { teachers = ['
        '{ name = "frozen", options = { run = "RUN", modality = "a" } }, '
        '{ name = "frozen", options = { run = "RUN", modality = "b" } }] }'
    ),
}


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("teacher")
    tiny_run(root, TEACHER_RUN)
    return root / "run"


def _student(tmp_path, teacher: str, run) -> Trainer:
    path = tmp_path / f"{teacher}.toml"
    path.write_text(STUDENT.replace("TEACHER", TEACHERS[teacher].replace("RUN", str(run))))
    return Trainer(load_config(path), tmp_path / teacher, progress=False)


@pytest.mark.parametrize("teacher", sorted(TEACHERS))
def test_every_builtin_teacher_trains_from_toml(teacher, teacher_run, tmp_path):
    trainer = _student(tmp_path, teacher, teacher_run)
    metrics = trainer.fit()
    assert metrics["step"] == 40 and trainer.bad_steps == 0
    assert type(trainer.teacher).__name__.lower().startswith(teacher[:4])


def test_a_privileged_distill_run_is_benchmarked(teacher_run, tmp_path, capsys):
    trainer = _student(tmp_path, "privileged", teacher_run)
    trainer.fit()
    assert trainer.teacher.teacher_keys == ("a", "b") and trainer.teacher.student_keys == ("c",)
    rows = [json.loads(x) for x in (tmp_path / "privileged/metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["loss"] < rows[0]["loss"]
    out = tmp_path / "bench"
    assert main(["bench", "--checkpoint", str(tmp_path / "privileged"), "--out", str(out)]) == 0
    bench = json.loads((out / "bench.json").read_text())
    probe = next(r for r in bench if r["task"] == "linear_probe" and r["query"] == "c")
    assert probe["value"] > 0.5 and probe["baseline"] is not None  # chance is 0.25
    assert {r["query"] for r in bench} == {"c"}  # the student's modality


def test_the_teacher_reads_the_batch_not_the_students_input(teacher_run):
    """The typed teacher input: a privileged teacher reads a and b of the batch mapping; the
    ``frozen`` one reads its key; a wrong key is a one-line error naming the batch's keys."""
    import manyview

    privileged = manyview.create(
        "teacher", "privileged", run=str(teacher_run), teacher_keys=["a", "b"], student_keys=["c"]
    )
    batch = {"a": torch.randn(5, 10), "b": torch.randn(5, 12), "c": torch.randn(5, 14)}
    assert privileged(batch).shape == (5, 16)
    frozen = manyview.create("teacher", "frozen", run=str(teacher_run), modality="a", key="a")
    assert torch.equal(frozen(batch), frozen(batch["a"]))
    wrong = manyview.create(
        "teacher", "frozen", encoder="mlp", encoder_kwargs={"input_dim": 10}, key="z"
    )
    with pytest.raises(ValueError, match=r"reads the batch's 'z'.*\['a', 'b', 'c'\]"):
        wrong(batch)
    with pytest.raises(ValueError, match=r"lacks \['b'\]"):
        privileged({"a": batch["a"], "c": batch["c"]})
