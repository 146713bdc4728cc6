"""The speech_supcon recipe through the core Trainer: supervised-contrastive word recognition
on held-out voices, the joint objective, init_from, view sets, configuration errors, the
shipped configuration."""

from __future__ import annotations

import copy
import time

import pytest
import torch
import torch.nn.functional as F

import manyview
from manyview.config import ConfigError, validate
from manyview.training.trainer import Trainer
from manyview_speech.datasets.spoken_words import SpokenWords
from manyview_speech.recipes.speech_supcon import SpeechClassificationRecipe


@torch.no_grad()
def knn_accuracy(train_x, train_y, test_x, test_y, k: int = 5) -> float:
    """Cosine kNN (majority of k) of held-out features against the training features."""
    a, b = F.normalize(train_x, dim=1), F.normalize(test_x, dim=1)
    nearest = (b @ a.T).topk(k, dim=1).indices
    votes = F.one_hot(train_y[nearest], int(train_y.max()) + 1).sum(1)
    return float((votes.argmax(1) == test_y).float().mean())


def linear_probe_accuracy(train_x, train_y, test_x, test_y, steps: int = 100) -> float:
    """Multinomial logistic regression (L-BFGS) on standardised frozen features."""
    mean, std = train_x.mean(0), train_x.std(0).clamp(min=1e-6)
    a, b = (train_x - mean) / std, (test_x - mean) / std
    probe = torch.nn.Linear(a.shape[1], int(train_y.max()) + 1)
    opt = torch.optim.LBFGS(probe.parameters(), max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(probe(a), train_y) + 1e-3 * probe.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return float((probe(b).argmax(1) == test_y).float().mean())


@pytest.mark.slow
def test_supcon_learns_words_that_transfer_to_held_out_voices(tmp_path, speech):
    """SupCon pre-training on spoken digits (16 training voices), scored on 16 voices never
    seen in training; chance is 10%."""
    start = time.perf_counter()
    trainer = Trainer(
        validate(speech.config(60, speech.words, objective="contrastive")), tmp_path, progress=False
    )
    metrics = trainer.fit()
    train, test = trainer.dataset, SpokenWords(**speech.words, split="test")
    assert not set(train.speakers.tolist()) & set(test.speakers.tolist())
    recipe = trainer.recipe.eval()
    with torch.no_grad():
        train_x, test_x = recipe.features(train.audio), recipe.features(test.audio)
        online = float((recipe.predict(test.audio) == test.labels).float().mean())
        torch.manual_seed(0)
        untrained = manyview.create("encoder", "logmel_cnn", **speech.encoder).eval()
        before = knn_accuracy(
            untrained(train.audio), train.labels, untrained(test.audio), test.labels
        )
    knn = knn_accuracy(train_x, train.labels, test_x, test.labels)
    probe = linear_probe_accuracy(train_x, train.labels, test_x, test.labels)
    elapsed = time.perf_counter() - start
    print(
        f"\nspoken digits, {len(train)} train clips / {len(test)} held-out-voice clips, "
        f"60 steps: kNN {knn:.3f} (untrained encoder {before:.3f}), linear probe {probe:.3f}, "
        f"online probe {online:.3f}, chance 0.100; supcon {metrics['loss/supcon']:.3f}; "
        f"{elapsed:.1f} s"
    )
    assert knn >= 0.8 and probe >= 0.7, "not clearly better than chance (0.1)"
    assert knn >= before + 0.1, "training did not improve on the untrained encoder"


def test_joint_objective_trains_the_classifier_with_cross_entropy(tmp_path, speech):
    config = speech.config(4, speech.tiny, objective="joint", ce_weight=0.5, label_smoothing=0.1)
    config["run"].update(batch_size=4, log_every=1)  # the logged loss is the last step's
    metrics = Trainer(validate(config), tmp_path / "joint", progress=False).fit()
    assert {"loss/supcon", "loss/ce", "loss/accuracy"} <= set(metrics)
    assert metrics["loss"] == pytest.approx(
        metrics["loss/supcon"] + 0.5 * metrics["loss/ce"], rel=1e-4
    )


def test_contrastive_objective_keeps_the_encoder_out_of_cross_entropy(speech):
    config = validate(speech.config(1, speech.tiny, objective="contrastive"))
    data = SpokenWords(**speech.tiny)
    recipe = SpeechClassificationRecipe(config, data)
    batch = data.get_batch(range(len(data)))
    recipe.losses.losses["supcon"].temperature = 1e9  # make the contrastive term's gradient vanish
    out = recipe.step(batch, torch.Generator().manual_seed(0))
    out.loss.backward()
    assert recipe.model["classifier"].weight.grad.abs().sum() > 0
    grads = [p.grad for p in recipe.model["encoder"].parameters() if p.grad is not None]
    assert all(g.abs().max() < 1e-6 for g in grads)


def test_init_from_a_pretraining_run_and_freeze(tmp_path, speech):
    config = speech.config(2, speech.tiny, objective="contrastive")
    config["run"]["batch_size"] = 4
    Trainer(validate(config), tmp_path / "pre", progress=False).fit()
    from safetensors.torch import load_file

    saved = load_file(tmp_path / "pre/checkpoints/last/model.safetensors")
    data = SpokenWords(**speech.tiny)
    tuned = validate(
        speech.config(
            1, speech.tiny, init_from=str(tmp_path / "pre"), freeze_encoder=True, num_classes=5
        )
    )
    recipe = SpeechClassificationRecipe(tuned, data)
    weight = "encoder.head.weight"
    assert torch.equal(recipe.model.state_dict()[weight], saved[weight])
    assert recipe.model["classifier"].out_features == 5  # another head: left fresh
    assert not any(p.requires_grad for p in recipe.model["encoder"].parameters())
    assert not recipe.train().model["encoder"].training and recipe.model["classifier"].training
    assert all(p.requires_grad for p in recipe.trainable())


def test_view_set_option_gives_multi_crop_views(speech):
    config = validate(
        speech.config(
            1,
            speech.tiny,
            view_set="multi_crop",
            view_set_options={
                "num_views": 4,
                "global_seconds": 0.5,
                "local_seconds": 0.25,
                "n_mels": 40,
            },
        )
    )
    data = SpokenWords(**speech.tiny)
    recipe = SpeechClassificationRecipe(config, data)
    out = recipe.step(data.get_batch(range(4)), torch.Generator().manual_seed(0))
    assert recipe.num_views == 4 and out.embeddings.shape == (4, 4, 64)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c["recipe_options"].update(objetive="joint"), "did you mean 'objective'"),
        (lambda c: c["recipe_options"].update(objective="ce"), "objective must be"),
        (lambda c: c["modalities"].update(text={"encoder": "char_ngram"}), "one audio modality"),
        (lambda c: c["recipe_options"].update(init_from="/nowhere"), "no model.safetensors"),
        (lambda c: c["losses"][0].update(name="clip"), "takes 2..2 views"),
    ],
)
def test_config_errors(change, message, speech):
    config = speech.config(1, speech.tiny)
    if "clip" in message or "2..2" in message:
        config["modalities"]["audio"]["num_views"] = 3
    change(config)
    with pytest.raises(ConfigError, match=message):
        SpeechClassificationRecipe(validate(copy.deepcopy(config)), SpokenWords(**speech.tiny))


def test_the_shipped_config_runs(tmp_path):
    from manyview.config import load_config

    path = manyview.create("config", "spoken_words_supcon")
    assert manyview.entry("config", "spoken_words_supcon").plugin == "manyview-speech"
    config = load_config(
        path,
        [
            "run.steps=2",
            "run.batch_size=4",
            'data.options.words=["yes", "no"]',
            'data.options.dialects=["en-us"]',
            'data.options.variants=["m1", "f3", "klatt"]',
            "data.options.test_variants=1",
        ],
    )
    metrics = Trainer(config, tmp_path, progress=False).fit()
    assert metrics["step"] == 2 and "loss/supcon" in metrics
