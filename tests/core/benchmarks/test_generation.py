"""The ``generation`` suite: the Fréchet distance, the reference classifier and its cache,
the image grid and plot, the benchmark's rows and files on a fake generator, the
ImageGenerator protocol of a Run, and the one-line errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.linalg
import torch
from PIL import Image
from torch import nn

import manyview
from manyview.benchmarks import BenchmarkError, generation
from manyview.benchmarks.generation import frechet_distance, reference_classifier
from manyview.benchmarks.suites import ROW_KEYS, _write_merged, run_suites
from manyview.datasets.digits import Digits
from manyview.runs import ImageGenerator, Run, RunError
from manyview.testing import check_benchmark

from ._generators import DIGITS16, FakeGenerator
from ._generators import generator_run as make_run


@pytest.fixture
def generator_run(tmp_path):
    return lambda strength=4.0, **options: make_run(tmp_path, strength, **options)


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message, message
    return message


# ----------------------------------------------------------------------------- the distance


def scipy_fd(a: np.ndarray, b: np.ndarray) -> float:
    """The usual FID code's formula: scipy's matrix square root of S_a S_b."""
    mu = a.mean(0) - b.mean(0)
    s_a, s_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    root = scipy.linalg.sqrtm(s_a @ s_b).real
    return float(mu @ mu + np.trace(s_a + s_b - 2 * root))


@pytest.mark.parametrize("d", [1, 3, 16])
def test_frechet_distance_matches_scipy_sqrtm_on_random_covariances(d):
    rng = np.random.default_rng(d)
    a = rng.normal(size=(400, d)) @ rng.normal(size=(d, d)) + rng.normal(size=d)
    b = rng.normal(size=(300, d)) @ rng.normal(size=(d, d)) * 0.5 - 1.0
    assert frechet_distance(a, b) == pytest.approx(scipy_fd(a, b), rel=1e-7, abs=1e-9)
    ta, tb = torch.as_tensor(a, dtype=torch.float32), torch.as_tensor(b, dtype=torch.float32)
    assert frechet_distance(ta, tb) == pytest.approx(scipy_fd(a, b), rel=1e-4)


def test_frechet_distance_closed_form_for_diagonal_gaussians():
    # points ±c_i e_i: mean mu, sample covariance exactly diag(2 c_i^2 / (2D - 1))
    d = 5
    eye = np.eye(d)

    def design(c, mu):
        return np.concatenate([eye * c, -eye * c]) + mu

    c_a, c_b = np.array([1.0, 2.0, 0.5, 3.0, 1.5]), np.array([2.0, 2.0, 1.0, 0.5, 0.1])
    mu_a, mu_b = np.arange(d, dtype=float), np.full(d, 0.5)
    s = math.sqrt(2 / (2 * d - 1))
    expected = float(((mu_a - mu_b) ** 2).sum() + ((c_a * s - c_b * s) ** 2).sum())
    got = frechet_distance(design(c_a, mu_a), design(c_b, mu_b))
    assert got == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_is_zero_for_identical_sets_and_symmetric():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 8)) * 3.0
    b = rng.normal(size=(150, 8)) + 0.3
    assert frechet_distance(a, a.copy()) == pytest.approx(0.0, abs=1e-9)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-9)
    assert frechet_distance(a, b) > 0.5


def test_frechet_distance_of_fewer_samples_than_dimensions_is_finite():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(10, 64)), rng.normal(size=(12, 64)) + 1.0
    value = frechet_distance(a, b)
    assert math.isfinite(value) and value > 0


@pytest.mark.parametrize(
    ("a", "b", "match"),
    [
        (np.zeros((1, 3)), np.zeros((5, 3)), "a has 1 row"),
        (np.zeros((5, 3)), np.zeros((5, 4)), "a has 3 features per row but b has 4"),
        (np.zeros((5, 3)), np.full((5, 3), np.nan), "b has non-finite values"),
        (np.zeros(5), np.zeros((5, 3)), r"a must be \(N, D\) features"),
    ],
)
def test_frechet_distance_refuses_bad_input_in_one_line(a, b, match):
    with pytest.raises(ValueError, match=match) as exc:
        frechet_distance(a, b)
    one_line(exc)


# ----------------------------------------------------------------------------- the reference


def test_reference_classifier_recognises_held_out_digits():
    train, test = Digits("train", size=16), Digits("test", size=16)
    clf = reference_classifier(train.images, train.labels)
    assert not clf.training and not any(p.requires_grad for p in clf.parameters())
    assert clf.features(test.images).shape == (len(test), 64)
    pred = clf.predict(test.images)
    assert pred.shape == (len(test),)
    assert float((pred == test.labels).float().mean()) > 0.9


def test_reference_classifier_of_tiny_images_is_an_mlp():
    train, test = Digits("train", size=4), Digits("test", size=4)
    clf = reference_classifier(train.images, train.labels, cache=False)
    assert clf.architecture["kind"] == "mlp"
    assert float((clf.predict(test.images) == test.labels).float().mean()) > 0.6


def test_reference_classifier_cache_is_reused_and_a_corrupt_file_rebuilt(tmp_path, monkeypatch):
    data = Digits("train", size=8, limit=200)
    trained = []
    real_train = generation.train_classifier

    def counting(*args, **kwargs):
        trained.append(1)
        return real_train(*args, **kwargs)

    monkeypatch.setattr(generation, "train_classifier", counting)
    first = reference_classifier(data.images, data.labels, root=tmp_path)
    files = list((tmp_path / "reference_classifier").glob("*.safetensors"))
    assert trained == [1] and len(files) == 1

    def refuse(*args, **kwargs):
        raise AssertionError("trained again although the cache holds the weights")

    monkeypatch.setattr(generation, "train_classifier", refuse)
    second = reference_classifier(data.images, data.labels, root=tmp_path)
    for (k, v), w in zip(first.state_dict().items(), second.state_dict().values(), strict=True):
        assert torch.equal(v, w), k

    files[0].write_bytes(b"not a safetensors file")
    monkeypatch.setattr(generation, "train_classifier", counting)
    with pytest.warns(UserWarning, match="unreadable.*retraining"):
        third = reference_classifier(data.images, data.labels, root=tmp_path)
    assert trained == [1, 1]
    x = data.images[:20]
    assert torch.equal(third.features(x), first.features(x))  # seeded: the same weights
    reference_classifier(data.images, data.labels, root=tmp_path)  # the rebuilt file loads
    assert trained == [1, 1]

    other = Digits("train", size=8, limit=150)  # other images: another key
    reference_classifier(other.images, other.labels, root=tmp_path)
    assert trained == [1, 1, 1]
    assert len(list((tmp_path / "reference_classifier").glob("*.safetensors"))) == 2


def test_reference_classifier_refuses_mismatched_labels():
    with pytest.raises(ValueError, match=r"labels must be \(4,\)") as exc:
        reference_classifier(torch.zeros(4, 1, 8, 8), torch.zeros(3, dtype=torch.long))
    one_line(exc)


# ----------------------------------------------------------------------------- pictures


@pytest.mark.parametrize("channels", [1, 3])
def test_save_image_grid_writes_an_upscaled_png(tmp_path, channels):
    images = torch.rand(10, channels, 16, 16)
    path = generation.save_image_grid(images, tmp_path / "grid.png", nrow=5)
    with Image.open(path) as im:
        im.load()
        # 5 x 2 cells of 64 px (16 px upscaled 4x, nearest) with 2-px gaps
        assert im.size == (5 * 66 + 2, 2 * 66 + 2)
        assert im.mode == ("L" if channels == 1 else "RGB")
        pixels = np.asarray(im)
    cell = pixels[2 : 2 + 64, 2 : 2 + 64]
    expected = (images[0].clamp(0, 1) * 255).round().to(torch.uint8)
    expected = expected.repeat_interleave(4, 1).repeat_interleave(4, 2).permute(1, 2, 0).numpy()
    assert np.array_equal(cell if channels == 3 else cell[..., None], expected)


def test_save_image_grid_refuses_other_channel_counts(tmp_path):
    with pytest.raises(ValueError, match="1 or 3 channels, got 2") as exc:
        generation.save_image_grid(torch.rand(4, 2, 8, 8), tmp_path / "g.png")
    one_line(exc)


# ----------------------------------------------------------------------------- the protocol


def test_a_run_samples_in_eval_mode_without_gradients_and_restores_modes(generator_run):
    run = generator_run()
    run.recipe.train()
    assert isinstance(run.recipe, ImageGenerator)
    x = run.sample(6, steps=2, labels=torch.arange(6), generator=torch.Generator().manual_seed(0))
    assert x.shape == (6, 1, 16, 16) and x.dtype == torch.float32
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    assert run.recipe.calls[-1] == {"n": 6, "steps": 2, "training": False, "grad": False}
    assert run.recipe.training and run.recipe.model.training


def test_run_sample_of_a_recipe_that_does_not_generate_is_one_line(tmp_path):
    run = Run(nn.Linear(2, 2), {"data": DIGITS16}, tmp_path, None)
    with pytest.raises(RunError, match=r"does not generate images.*ImageGenerator") as exc:
        run.sample(4)
    one_line(exc)
    assert not isinstance(run.recipe, ImageGenerator)


def test_image_generator_is_exported_lazily():
    assert manyview.ImageGenerator is ImageGenerator
    assert "ImageGenerator" in manyview.__all__ and "ImageGenerator" in dir(manyview)


# ----------------------------------------------------------------------------- the suite


def rows_of(result, task):
    return {r["steps"]: r for r in result["rows"] if r["task"] == task}


def test_frechet_distance_falls_as_the_fake_gets_closer_to_the_data(generator_run, tmp_path):
    run = generator_run(strength=2.0)
    result = generation.run(run, steps=[1, 2, 8, 32], num_samples=200)
    fd = rows_of(result, "frechet_distance")
    values = [fd[k]["value"] for k in (1, 2, 8, 32)]
    assert values == sorted(values, reverse=True) and values[0] > 2 * values[-1]
    floor = fd[None]
    assert floor["metric"] == "real train vs test" and floor["baseline"] is None
    for k in (1, 2, 8, 32):  # the random-init twin makes pure noise, whatever the steps
        assert fd[k]["baseline"] > 2 * fd[k]["value"]
    assert fd[32]["baseline"] > 20 * fd[32]["value"]
    # a stronger fake at the same steps is closer still
    closer = generation.run(generator_run(strength=8.0), steps=2, num_samples=200, baseline=False)
    assert rows_of(closer, "frechet_distance")[2]["value"] < fd[2]["value"]
    assert rows_of(closer, "frechet_distance")[2]["baseline"] is None


def test_a_perfect_generator_is_recognised_and_near_the_floor(tmp_path):
    recipe = FakeGenerator(perfect=True)
    run = Run(recipe, {"data": DIGITS16}, tmp_path, None)  # no initial weights: no baseline
    noise = Run(FakeGenerator(0.0), {"data": DIGITS16}, tmp_path, None)
    result = generation.run(run, steps=[4])
    pure_noise = generation.run(noise, steps=[4])
    acc = rows_of(result, "classifier_accuracy")
    assert acc[4]["value"] > 0.9 and acc[None]["metric"] == "real test images"
    assert rows_of(pure_noise, "classifier_accuracy")[4]["value"] < 0.3
    fd, noise_fd = rows_of(result, "frechet_distance"), rows_of(pure_noise, "frechet_distance")
    assert fd[4]["value"] < 0.05 * noise_fd[4]["value"]
    assert fd[4]["value"] < 2 * fd[None]["value"]  # about as close as real train vs test
    assert "baseline" in result["meta"] and "initial weights" in result["meta"]["baseline"]
    # the conditioning labels are the real split's, in order: the classes match
    assert result["meta"]["num_samples"] == len(Digits("test", size=16))


def test_outputs_rows_and_files(generator_run, tmp_path):
    out = tmp_path / "bench"
    result = check_benchmark("generation", generator_run(), out, num_samples=100)
    assert result["meta"]["steps"] == [1, 2, 4, 8, 16]  # the defaults and sample_steps
    for row in result["rows"]:
        assert set(ROW_KEYS) <= set(row) and row["suite"] == "generation"
        assert row["query"] == "image" and row["target"] is None
    tasks = [(r["task"], r["metric"]) for r in result["rows"]]
    assert len(tasks) == len(set(tasks)) == 2 * 5 + 2
    assert json.loads((out / "bench.json").read_text()) == result["rows"]
    md = (out / "bench.md").read_text()
    assert "Fréchet distance" in md and "| image | - | steps=16 |" in md
    assert "zero-shot" not in md
    names = sorted(p.name for p in out.glob("*.png"))
    assert names == sorted(
        [*(f"samples_steps{k}.png" for k in (1, 2, 4, 8, 16)), "quality_vs_steps.png"]
    )
    assert {str(p) for p in out.iterdir()} == set(result["files"])
    with Image.open(out / "samples_steps4.png") as im:
        assert im.size == (8 * 66 + 2, 8 * 66 + 2)  # the first 64 samples, 8 per row
    with Image.open(out / "quality_vs_steps.png") as im:
        im.verify()


def test_unconditional_generator_has_no_accuracy_rows(generator_run):
    result = generation.run(generator_run(num_classes=None), steps=[2], num_samples=60)
    assert {r["task"] for r in result["rows"]} == {"frechet_distance"}
    assert result["meta"]["class_conditional"] is False


def test_samples_are_drawn_in_batches_and_seeded(generator_run):
    run = generator_run()
    first = generation.run(run, steps=[3], num_samples=50, batch_size=16, baseline=False)
    assert [c["n"] for c in run.recipe.calls] == [16, 16, 16, 2]
    assert {c["steps"] for c in run.recipe.calls} == {3}
    again = generation.run(run, steps=[3], num_samples=50, batch_size=16, baseline=False)
    assert again["rows"] == first["rows"]
    other = generation.run(run, steps=[3], num_samples=50, batch_size=50, baseline=False, seed=1)
    assert other["rows"][0]["value"] != first["rows"][0]["value"]
    assert [c["n"] for c in run.recipe.calls[-1:]] == [50]


def test_all_skips_generation_for_a_run_that_does_not_generate(run_dir, tmp_path):
    result = run_suites("all", run_dir)
    skipped = dict(result["skipped"])
    assert "generation" in skipped and "ImageGenerator" in skipped["generation"]
    for name in skipped:  # plugin suites that need more than embeddings are skipped too
        assert manyview.entry("benchmark", name).meta.get("requires"), name
    assert "generation" not in [name for name, _ in result["failed"]]
    assert "crossmodal" in {r["suite"] for r in result["rows"]}
    assert "generation" not in {r["suite"] for r in result["rows"]}
    _write_merged([], [], tmp_path, [("generation", skipped["generation"])])
    assert (
        "# Skipped suites\n\n- `generation`: the run's recipe"
        in (tmp_path / "bench.md").read_text()
    )
    with pytest.raises(BenchmarkError, match="not an image generator") as exc:
        run_suites("generation", run_dir)  # named: it runs and says why it cannot
    one_line(exc)


class Broken(FakeGenerator):
    def __init__(self, result, **kwargs):
        super().__init__(**kwargs)
        self.result = result

    def sample(self, n, *, steps=None, labels=None, generator=None):
        return self.result(n)


@pytest.mark.parametrize(
    ("make", "options", "match"),
    [
        (
            lambda: nn.Linear(2, 2),
            {},
            "Linear is not an image generator .*lacks sample, "
            "sample_steps, num_classes.*ImageGenerator protocol",
        ),
        (FakeGenerator, {"steps": 0}, "steps must be a positive int, got 0"),
        (FakeGenerator, {"steps": []}, "steps is empty"),
        (FakeGenerator, {"num_samples": 1}, "num_samples must be an int >= 2, got 1"),
        (FakeGenerator, {"batch_size": 0}, "batch_size must be a positive int, got 0"),
        (FakeGenerator, {"device": "gpu"}, "gpu"),
        (
            lambda: Broken(lambda n: torch.rand(n, 1, 8, 8)),
            {},
            r"returned \(4, 1, 8, 8\); "
            r"expected \(4, 1, 16, 16\)",
        ),
        (lambda: Broken(lambda n: torch.rand(n, 1, 16, 16) * 2), {}, r"values in .*\[0, 1\]"),
        (lambda: Broken(lambda n: torch.full((n, 1, 16, 16), math.nan)), {}, "non-finite"),
        (
            lambda: FakeGenerator(num_classes=5),
            {},
            "labels up to 9 but the model has num_classes=5",
        ),
    ],
)
def test_one_line_errors(tmp_path, make, options, match):
    run = Run(make(), {"data": DIGITS16}, tmp_path, None)
    options = {"steps": [2], "num_samples": 4, **options}
    with pytest.raises(BenchmarkError, match=match) as exc:
        generation.run(run, baseline=False, **options)
    one_line(exc)
