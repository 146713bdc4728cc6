"""digits3: determinism, alignment by class, the split by voice, the cache and the CLI."""

from __future__ import annotations

import json
import time

import pytest
import torch

import manyview
from manyview.cli import main
from manyview.testing import DatasetContractTests
from manyview_digits3.datasets.digits3 import Digits3, build_digits3, text_forms

SMALL = {
    "dialects": ("en-us",),
    "variants": ("m1", "f1", "m2"),
    "test_variants": 1,
    "renditions": 1,
    "max_images": 100,
}


@pytest.fixture(scope="module")
def small_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits3")
    build_digits3(root, **SMALL)
    return root


def test_items_shapes_and_alignment(small_root):
    ds = Digits3("train", small_root, **SMALL)
    assert len(ds) > 0 and ds.num_classes == 10
    item = ds[3]
    assert set(item) == {"image", "audio", "text", "label", "index"}
    assert item["image"].shape == (1, 8, 8) and item["image"].dtype == torch.float32
    assert float(item["image"].min()) >= 0.0 and float(item["image"].max()) <= 1.0
    assert item["audio"].shape == (16000,) and item["audio"].abs().max() <= 1.0
    for i in range(len(ds)):  # every modality of a sample shows the same digit
        y = int(ds.labels[i])
        assert ds.texts[i] in text_forms(y)
        voice = ds.voice_names[int(ds.voices[i])]
        assert voice.startswith("en-us+")
    batch = ds.get_batch([0, 5, 2])
    assert batch["image"].shape == (3, 1, 8, 8) and batch["audio"].shape == (3, 16000)
    assert batch["text"] == [ds[0]["text"], ds[5]["text"], ds[2]["text"]]
    assert torch.equal(batch["audio"][1], ds[5]["audio"])
    assert torch.equal(
        batch["label"], torch.tensor([ds[0]["label"], ds[5]["label"], ds[2]["label"]])
    )


def test_audio_matches_its_class_clip(small_root):
    a = build_digits3(small_root, **SMALL)["arrays"]
    ds = Digits3("test", small_root, **SMALL)
    clip_label = torch.from_numpy(a["clip_label"])
    assert torch.equal(clip_label[ds.clip_ids], ds.labels)
    assert sorted(set(ds.text_forms_idx.tolist())) == [0, 1, 2, 3] or len(ds) < 40


def test_split_by_image_and_by_voice(small_root):
    train = Digits3("train", small_root, **SMALL)
    test = Digits3("test", small_root, **SMALL)
    assert set(train.image_ids.tolist()).isdisjoint(test.image_ids.tolist())
    assert len(train) + len(test) == 100
    train_voices = {train.voice_names[v] for v in train.voices.tolist()}
    test_voices = {test.voice_names[v] for v in test.voices.tolist()}
    assert train_voices.isdisjoint(test_voices)
    assert all("+m2" in v for v in test_voices)
    assert set(test.labels.tolist()) == set(range(10))


def test_deterministic_across_builds(tmp_path, small_root):
    first = json.loads(next((small_root / "digits3").glob("*.json")).read_text())
    build_digits3(tmp_path, **SMALL)
    second = json.loads(next((tmp_path / "digits3").glob("*.json")).read_text())
    assert first["content_hash"] == second["content_hash"]
    a = Digits3("train", small_root, **SMALL)
    b = Digits3("train", tmp_path, **SMALL)
    assert torch.equal(a.clips, b.clips) and a.texts == b.texts
    other = build_digits3(tmp_path, **{**SMALL, "seed": 1})
    assert other["built"]
    assert len(list((tmp_path / "digits3").glob("*.npz"))) == 2


def test_cache_is_reused(small_root):
    again = build_digits3(small_root, **SMALL)
    assert not again["built"] and again["reason"] == ""


def test_corrupt_cache_is_rebuilt_with_a_warning(tmp_path):
    built = build_digits3(tmp_path, **SMALL)
    path = built["path"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match="corrupt.*rebuilding"):
        rebuilt = build_digits3(tmp_path, **SMALL)
    assert rebuilt["built"] and "content hash" in rebuilt["reason"]
    assert not build_digits3(tmp_path, **SMALL)["built"]
    path.write_bytes(b"")  # truncated to nothing
    with pytest.warns(UserWarning, match="rebuilding"):
        assert Digits3("train", tmp_path, **SMALL).path == path
    manifest = path.with_suffix(".json")
    manifest.write_text("{not json")
    with pytest.warns(UserWarning, match="manifest .* unreadable"):
        assert build_digits3(tmp_path, **SMALL)["built"]


def test_stale_cache_is_rebuilt(tmp_path):
    path = build_digits3(tmp_path, **SMALL)["path"]
    manifest = path.with_suffix(".json")
    meta = json.loads(manifest.read_text())
    meta["version"] = 0
    manifest.write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match="format version 0"):
        assert build_digits3(tmp_path, **SMALL)["built"]


def test_bad_options():
    with pytest.raises(ValueError, match="split"):
        Digits3("val")
    with pytest.raises(ValueError, match="test_variants"):
        build_digits3(variants=("m1",), test_variants=1)


def test_registered_and_created_through_the_registry(small_root):
    assert "digits3" in manyview.available("dataset")
    ds = manyview.create("dataset", "digits3", split="test", root=str(small_root), **SMALL)
    assert len(ds) > 0


def test_root_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MANYVIEW_DATA", str(tmp_path))
    path = build_digits3(**SMALL)["path"]
    assert path.parent == tmp_path / "digits3"


@pytest.mark.slow
def test_full_build_under_a_minute_with_disjoint_voices(tmp_path, capsys):
    start = time.perf_counter()
    assert main(["data", "build", "digits3", "--root", str(tmp_path)]) == 0
    seconds = time.perf_counter() - start
    assert "digits3: built" in capsys.readouterr().out
    assert seconds < 60, f"full build took {seconds:.1f} s"
    train, test = Digits3("train", tmp_path), Digits3("test", tmp_path)
    assert len(train) + len(test) == 1797
    train_voices = {train.voice_names[v] for v in train.voices.tolist()}
    test_voices = {test.voice_names[v] for v in test.voices.tolist()}
    assert len(train_voices) >= 24 and len(test_voices) >= 8
    assert train_voices.isdisjoint(test_voices)
    assert set(train.image_ids.tolist()).isdisjoint(test.image_ids.tolist())
    assert main(["data", "build", "digits3", "--root", str(tmp_path)]) == 0
    assert "cached (valid, reused)" in capsys.readouterr().out


def test_cli_data_build_errors(capsys):
    assert main(["data", "build", "synthetic"]) == 2
    assert "no build step" in capsys.readouterr().err
    assert main(["data", "build", "digits33"]) == 2
    assert "digits3" in capsys.readouterr().err


class TestDigits3Contract(DatasetContractTests):
    """The dataset protocol on a small cached build (both splits' samples)."""

    name = "digits3"

    @pytest.fixture(autouse=True)
    def _root(self, small_root):
        self.kwargs = {"root": str(small_root), **SMALL}
