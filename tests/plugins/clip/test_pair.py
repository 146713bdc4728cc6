"""manyview-clip's open_clip_pair: one CLIP model as two encoders: sharing, training with
the core losses, recipes."""

from __future__ import annotations

import copy

import torch
from torch.utils.data import default_collate

import manyview
from manyview.benchmarks.prompts import DIGIT_NAMES
from manyview.config import validate
from manyview.recipes.contrastive import ContrastiveRecipe
from manyview_clip import OpenCLIPImage, open_clip_pair
from manyview_text import OpenCLIPText

CAPTIONS = [f"a photo of the digit {name}" for name in DIGIT_NAMES]


def test_the_encoders_share_the_model():
    pair = open_clip_pair("tiny", normalize=True)
    assert isinstance(pair.image, OpenCLIPImage) and isinstance(pair.text, OpenCLIPText)
    assert pair.image.tower is pair.model.visual and pair.text.tower is pair.model.text
    model_params = {id(p) for p in pair.model.parameters()}
    tower_params = [id(p) for e in (pair.image, pair.text) for p in e.parameters()]
    assert set(tower_params) <= model_params
    assert len(tower_params) == len(set(tower_params)), "the towers share no parameter"
    assert len(model_params) == len(tower_params) + 1  # + the model's logit scale
    pair.model.eval()
    images = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        img_f, txt_f, scale = pair.model(
            pair.image.preprocess(images), pair.text.tokenize(CAPTIONS[:4])
        )
        assert torch.allclose(pair.image(images), img_f, atol=1e-6)
        assert torch.allclose(pair.text(CAPTIONS[:4]), txt_f, atol=1e-6)
        assert torch.allclose(pair.logits(images, CAPTIONS[:4]), scale * img_f @ txt_f.T, atol=1e-4)
    assert set(pair.encoders()) == {"image", "text"}


def test_registry_points_to_the_pair():
    factory = manyview.Entry(
        "encoder", "x", manyview.entry("encoder", "open_clip_text").meta["clip_pair"], "t"
    )
    assert factory.load() is open_clip_pair


def test_a_state_dict_of_both_encoders_round_trips_through_safetensors(tmp_path):
    from safetensors.torch import load_file, save_file

    pair = open_clip_pair("tiny")
    encoders = torch.nn.ModuleDict(pair.encoders())
    save_file(encoders.state_dict(), str(tmp_path / "model.safetensors"))
    other = torch.nn.ModuleDict(open_clip_pair("tiny").encoders())
    other.load_state_dict(load_file(str(tmp_path / "model.safetensors")))
    assert torch.equal(other["text"].eval()(CAPTIONS), pair.text.eval()(CAPTIONS))


def test_a_tiny_clip_trains_and_its_loss_falls():
    """Image + text towers of one tiny CLIP, the core ``clip`` loss, 20 AdamW steps."""
    torch.manual_seed(0)
    pair = open_clip_pair("tiny", text_cfg={"context_length": 16})
    images = torch.randint(
        0, 256, (10, 8, 8), generator=torch.Generator().manual_seed(0), dtype=torch.uint8
    )
    loss_fn = manyview.create("loss", "clip")
    opt = torch.optim.AdamW(pair.model.parameters(), lr=2e-3)
    losses = []
    for _ in range(20):
        loss = loss_fn([pair.image(images), pair.text(CAPTIONS)])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert sum(losses[-3:]) / 3 < 0.6 * losses[0], losses


def _config(modalities, losses):
    return validate({"data": {"name": "list"}, "modalities": modalities, "losses": losses})


def _digits(n=10):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 8, 8), generator=g, dtype=torch.uint8)
    return [
        {"image": images[i], "text": CAPTIONS[i % 10], "label": i % 10, "index": i}
        for i in range(n)
    ]


def test_the_contrastive_recipe_trains_image_and_text():
    """Strings reach the text encoder through default_collate and the views, as in training."""
    data = _digits()
    options = {"model": "tiny", "context_length": 16}
    config = _config(
        {
            "image": {"encoder": "open_clip_image", "encoder_options": {"model": "tiny"}},
            "text": {
                "encoder": "open_clip_text",
                "encoder_options": options,
                "views": [{"name": "word_deletion", "options": {"p": 0.0}}],
            },
        },
        [{"name": "clip"}],
    )
    torch.manual_seed(0)
    recipe = ContrastiveRecipe(config, data)
    batch = default_collate(data)
    assert isinstance(batch["text"], list) and isinstance(batch["text"][0], str)
    opt = torch.optim.AdamW(recipe.trainable(), lr=2e-3)
    g = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(20):
        out = recipe.step(batch, g)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.loss.item())
    assert out.embeddings.shape == (10, 2, 64)
    assert sum(losses[-3:]) / 3 < 0.6 * losses[0], losses


def test_deep_copies_of_a_pair_tower_are_independent():
    enc = open_clip_pair().text
    twin = copy.deepcopy(enc)
    with torch.no_grad():
        next(twin.parameters()).add_(1.0)
    assert not torch.equal(next(twin.parameters()), next(enc.parameters()))
