"""The crossmodal suite: Python API, ``manyview bench`` end to end, and bad inputs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from torch import nn

import manyview
from manyview.benchmarks import BenchmarkError, crossmodal
from manyview.cli import main


def value(rows, task, query, target, metric, key="value"):
    (row,) = [
        r
        for r in rows
        if (r["task"], r["query"], r["target"], r["metric"]) == (task, query, target, metric)
    ]
    return row[key]


def test_cli_bench_writes_json_md_and_plots_and_training_helps(run_dir, tmp_path, capsys):
    out = tmp_path / "bench"
    assert main(["bench", "--checkpoint", str(run_dir), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "random-init" in printed and "bench.json" in printed
    rows = json.loads((out / "bench.json").read_text())
    assert isinstance(rows, list) and rows
    for row in rows:
        assert set(row) == {"suite", "task", "query", "target", "metric", "value", "baseline"}
        assert row["suite"] == "crossmodal"
    tasks = {r["task"] for r in rows}
    assert tasks >= {
        "retrieval_class",
        "retrieval_instance",
        "linear_probe",
        "knn",
        "alignment",
        "uniformity",
        "effective_rank",
    }
    assert "zero_shot" not in tasks  # no text modality
    for q, t in (("a", "b"), ("b", "a")):
        for k in (1, 5, 10):
            assert 0.0 <= value(rows, "retrieval_class", q, t, f"R@{k}") <= 1.0
    r1 = value(rows, "retrieval_class", "a", "b", "R@1")
    r1_base = value(rows, "retrieval_class", "a", "b", "R@1", "baseline")
    probe = value(rows, "linear_probe", "a", None, "accuracy")
    probe_base = value(rows, "linear_probe", "a", None, "accuracy", "baseline")
    assert r1 > r1_base or probe > probe_base
    assert r1 > 0.5  # chance is 0.25
    md = (out / "bench.md").read_text()
    assert "| trained | random-init |" in md and "R@1" in md
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert {"retrieval_r1.png", "accuracy.png", "similarity.png", "embedding_map.png"} <= set(pngs)
    for p in out.glob("*.png"):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000


def test_api_on_a_run_dir_matches_registration(run_dir):
    entry = manyview.entry("benchmark", "crossmodal")
    assert entry.load() is crossmodal.run
    result = crossmodal.run(run_dir, modalities=["b"], baseline=None)
    assert result["files"] == []
    assert {r["query"] for r in result["rows"]} == {"b"}
    assert all(r["baseline"] is None for r in result["rows"])
    assert result["meta"]["n_test"] == 256


def test_baseline_is_the_runs_initial_model(run_dir):
    loaded = manyview.load_run(run_dir)
    again = manyview.load_run(run_dir)
    base = loaded.baseline().recipe.model.state_dict()
    for (name, w), w2 in zip(
        base.items(), again.baseline().recipe.model.state_dict().values(), strict=True
    ):
        assert torch.equal(w, w2), name
    trained = loaded.recipe.model.state_dict()
    assert any(not torch.equal(trained[k], v) for k, v in base.items())


# ------------------------------------------------------------------ zero-shot through the API

NAMES = ["cat", "dog", "owl"]


class Words(nn.Module):
    """A text encoder: each class name's prototype, whatever the template around it."""

    def __init__(self, protos: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("protos", protos)

    def forward(self, texts):
        assert isinstance(texts, list) and isinstance(texts[0], str)
        return torch.stack(
            [sum(p for n, p in zip(NAMES, self.protos, strict=True) if n in s) for s in texts]
        )


class Pairs(torch.utils.data.Dataset):
    class_names = NAMES

    def __init__(self, protos, n, seed):
        g = torch.Generator().manual_seed(seed)
        self.labels = torch.arange(n) % len(NAMES)
        self.image = protos[self.labels] + 0.3 * torch.randn(n, protos.shape[1], generator=g)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        y = int(self.labels[i])
        return {"image": self.image[i], "text": f"a {NAMES[y]}", "label": y, "index": i}


class TwoTowers(nn.Module):
    """An embedder of another library's making: ``modalities`` and ``encode`` are all a
    benchmark asks for."""

    modalities = ("image", "text")

    def __init__(self, protos: torch.Tensor) -> None:
        super().__init__()
        self.towers = nn.ModuleDict({"image": nn.Identity(), "text": Words(protos)})

    def encode(self, modality, inputs):
        return self.towers[modality](inputs)


def test_zero_shot_with_prompt_ensembling_through_the_text_encoder(tmp_path):
    protos = torch.randn(3, 6, generator=torch.Generator().manual_seed(0)) * 3
    model = TwoTowers(protos)
    train, test = Pairs(protos, 60, 1), Pairs(protos, 30, 2)
    result = crossmodal.run(
        model, train, test, templates=["a photo of a {}.", "{}"], out=tmp_path, baseline=None
    )
    rows = result["rows"]
    assert value(rows, "zero_shot", "image", "text", "accuracy") == 1.0
    assert value(rows, "retrieval_class", "text", "image", "R@1") == 1.0
    assert not any(r["task"] == "zero_shot" and r["query"] == "text" for r in rows)
    assert (tmp_path / "accuracy.png").is_file()


# ------------------------------------------------------------------ bad inputs


def test_missing_checkpoint_is_a_clear_error(tmp_path, capsys):
    assert main(["bench", "--checkpoint", str(tmp_path / "nope")]) == 2
    assert "is not a directory" in capsys.readouterr().err
    (tmp_path / "run").mkdir()
    assert main(["bench", "--checkpoint", str(tmp_path / "run")]) == 2
    assert "no config.toml" in capsys.readouterr().err


def test_run_without_checkpoints_is_a_clear_error(run_dir, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.toml").write_text((run_dir / "config.toml").read_text())
    with pytest.raises(BenchmarkError, match="no complete checkpoint"):
        crossmodal.run(bare)


def test_modality_without_encoder(run_dir, capsys):
    with pytest.raises(BenchmarkError, match=r"no encoder for modality 'c'.*\['a', 'b'\]"):
        crossmodal.run(run_dir, modalities=["a", "c"])
    assert main(["bench", "--checkpoint", str(run_dir), "--modalities", "c"]) == 2
    assert "no encoder for modality 'c'" in capsys.readouterr().err


def test_empty_split_and_unknown_suite(run_dir, capsys):
    loaded = manyview.load_run(run_dir)
    data = manyview.create("dataset", "synthetic", modalities={"a": 8, "b": 12})
    empty = torch.utils.data.Subset(data, [])
    with pytest.raises(BenchmarkError, match="test split is empty"):
        crossmodal.run(loaded, data, empty)
    with pytest.raises(BenchmarkError, match="train split is empty"):
        crossmodal.run(loaded.recipe, empty, data)
    with pytest.raises(BenchmarkError, match="valid"):
        crossmodal.run(run_dir, split="valid")
    assert main(["bench", "--checkpoint", str(run_dir), "--suite", "nope"]) == 2
    assert "nope" in capsys.readouterr().err


def test_bench_help_imports_no_torch():
    code = (
        "import sys\nfrom manyview.cli import main\n"
        "try:\n    main(['bench', '--help'])\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "--checkpoint" in out.stdout
    assert out.stdout.strip().endswith("False")


@pytest.mark.parametrize("size", ["0", "-1"])
def test_a_batch_size_below_one_is_one_line(run_dir, capsys, size):
    assert main(["bench", "--checkpoint", str(run_dir), "--batch-size", size]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"manyview bench: --batch-size must be a positive integer, got {size}"


def test_a_wrong_number_of_class_names_is_one_line(tmp_path):
    protos = torch.randn(3, 6, generator=torch.Generator().manual_seed(0))
    model = TwoTowers(protos)
    train, test = Pairs(protos, 12, 1), Pairs(protos, 9, 2)
    with pytest.raises(BenchmarkError, match=r"^class_names has 2 names but the test split has 3"):
        crossmodal.run(model, train, test, class_names=["a", "b"], out=tmp_path, baseline=None)
    with pytest.raises(BenchmarkError, match="batch_size must be a positive integer, got 0"):
        crossmodal.run(model, train, test, batch_size=0, out=tmp_path, baseline=None)


def test_class_names_fewer_than_the_labels_is_one_line(tmp_path):
    protos = torch.randn(3, 6, generator=torch.Generator().manual_seed(0))
    train, test = Pairs(protos, 12, 1), Pairs(protos, 9, 2)
    test.class_names = None  # the split names no classes: the labels tell
    with pytest.raises(BenchmarkError, match=r"labels up to 2; give one name per class"):
        crossmodal.run(
            TwoTowers(protos), train, test, class_names=NAMES[:2], out=tmp_path, baseline=None
        )
