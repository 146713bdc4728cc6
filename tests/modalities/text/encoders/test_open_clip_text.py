"""open_clip_text: shapes, sizes, determinism, dropout, checkpoints, bad input."""

from __future__ import annotations

import copy
import json
import warnings

import open_clip
import pytest
import torch

import manyview
from manyview.testing import check_encoder
from manyview_text import OpenCLIPText, build_clip
from manyview_text.models import CONFIGS

SENTENCES = ["a photo of the digit seven", "the spoken word three", "a handwritten two"]


def test_shapes_and_defaults(text_encoder):
    assert text_encoder.output_dim == 64 and text_encoder.context_length == 32
    out = text_encoder(SENTENCES)
    assert out.shape == (3, 64) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    assert text_encoder(tuple(SENTENCES)).shape == (3, 64)  # a tuple batch is fine too


def test_contract():
    check_encoder(manyview.create("encoder", "open_clip_text"))
    check_encoder(manyview.create("encoder", "open_clip_text", dropout=0.1, normalize=True))


def test_sizes_are_configurable():
    enc = OpenCLIPText(width=32, heads=2, layers=1, context_length=16, embed_dim=24)
    assert enc.output_dim == 24 and enc.context_length == 16
    assert len(enc.tower.transformer.resblocks) == 1 and enc.tower.width == 32
    assert enc(SENTENCES).shape == (3, 24)
    small = OpenCLIPText("small")
    assert small.output_dim == CONFIGS["small"]["embed_dim"]


def test_normalize():
    enc = OpenCLIPText(normalize=True)
    assert torch.allclose(enc(SENTENCES).norm(dim=1), torch.ones(3), atol=1e-5)


def test_config_dict_and_open_clip_name():
    cfg = {
        "embed_dim": 16,
        "vision_cfg": {
            "image_size": 16,
            "patch_size": 8,
            "width": 32,
            "layers": 1,
            "head_width": 16,
        },
        "text_cfg": {"context_length": 8, "width": 32, "heads": 2, "layers": 1},
    }
    assert OpenCLIPText(cfg)(SENTENCES).shape == (3, 16)
    # An open_clip config by name (no weights are loaded: pretrained=None, always).
    big = OpenCLIPText("ViT-B-32", layers=1)  # one layer keeps the test fast
    assert big.output_dim == 512 and big.context_length == 77


def test_deterministic():
    torch.manual_seed(1)
    a = OpenCLIPText()
    torch.manual_seed(1)
    b = OpenCLIPText()
    assert torch.equal(a(SENTENCES), b(SENTENCES))  # same seed, same weights, same output
    assert torch.equal(a(SENTENCES), a(SENTENCES))
    # One text gives the same features alone or in a batch (padding does not leak in).
    assert torch.allclose(a(SENTENCES)[1], a(SENTENCES[1:2])[0], atol=1e-5)


def test_two_dropout_views_differ_in_train_mode_and_agree_in_eval_mode():
    enc = OpenCLIPText(dropout=0.1, attn_dropout=0.1)
    enc.train()
    assert not torch.allclose(enc(SENTENCES), enc(SENTENCES))
    enc.eval()
    assert torch.equal(enc(SENTENCES), enc(SENTENCES))
    plain = OpenCLIPText()  # no dropout: the train-mode passes agree as well
    plain.train()
    assert torch.equal(plain(SENTENCES), plain(SENTENCES))


def test_dropout_follows_the_mode_of_a_deep_copy():
    """An EMA teacher deep-copies the student: the copy's dropout follows the copy's mode."""
    student = OpenCLIPText(dropout=0.2)
    teacher = copy.deepcopy(student).eval()
    student.train()
    assert torch.equal(teacher(SENTENCES), teacher(SENTENCES))
    teacher.train()
    student.eval()
    assert not torch.allclose(teacher(SENTENCES), teacher(SENTENCES))
    assert torch.equal(student(SENTENCES), student(SENTENCES))


def test_deep_copies_are_independent():
    enc = OpenCLIPText(dropout=0.1)
    twin = copy.deepcopy(enc)
    with torch.no_grad():
        next(twin.parameters()).add_(1.0)
    assert not torch.equal(next(twin.parameters()), next(enc.parameters()))


def test_dropout_keeps_open_clip_state_dict_keys():
    a, b = OpenCLIPText(dropout=0.1), OpenCLIPText()
    assert a.state_dict().keys() == b.state_dict().keys()
    b.load_state_dict(a.state_dict())
    a.eval(), b.eval()
    assert torch.equal(a(SENTENCES), b(SENTENCES))


def test_gradients_reach_the_embeddings(text_encoder):
    text_encoder(SENTENCES).sum().backward()
    grad = text_encoder.tower.token_embedding.weight.grad
    assert grad is not None and grad.abs().sum() > 0


def test_token_ids_are_accepted(text_encoder):
    ids = text_encoder.tokenize(SENTENCES)
    assert torch.equal(text_encoder(ids), text_encoder(SENTENCES))
    assert torch.equal(text_encoder(ids[:, :12]), text_encoder(SENTENCES))  # padded back
    with pytest.raises(ValueError, match="exceed the context"):
        text_encoder(torch.zeros(2, 40, dtype=torch.long))
    with pytest.raises(ValueError, match="token ids"):
        text_encoder(torch.zeros(2, 8))


def test_long_text_is_truncated_with_a_warning_once(text_encoder):
    long = " ".join(["seven"] * 100)
    with pytest.warns(UserWarning, match="truncated"):
        out = text_encoder([long, "two"])
    assert out.shape == (2, 64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        text_encoder([long])


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ([], "empty list"),
        (["fine", 7], "item 1 is a int"),
        ([b"bytes"], "item 0 is a bytes"),
        ("a single string", "wrap it"),
        (None, "list of strings"),
    ],
)
def test_bad_input(text_encoder, bad, match):
    with pytest.raises(ValueError, match=match):
        text_encoder(bad)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"model": "tinyy"}, "did you mean 'tiny'"),
        ({"model": "hf-hub:org/model"}, "Hugging Face hub"),
        ({"model": "ViT-B-16-SigLIP"}, "Hugging Face|vocab_size"),
        ({"model": "coca_ViT-B-32"}, "CoCa"),
        ({"checkpoint": "laion2b_s34b_b79k"}, "not a local file"),
        ({"width": 30, "heads": 4}, "divisible"),
        ({"layers": 0}, "positive int"),
        ({"dropout": 1.0}, r"\[0, 1\)"),
    ],
)
def test_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        OpenCLIPText(**kwargs)


def _tiny_clip_checkpoint(tmp_path, *, legacy: bool, suffix: str):
    """A tiny CLIP saved by open_clip itself: ``legacy`` uses the plain ``open_clip.CLIP``
    key layout (text parts at the top level), as OpenAI-style checkpoints do."""
    torch.manual_seed(3)
    cls = open_clip.CLIP if legacy else open_clip.CustomTextCLIP
    model = cls(**CONFIGS["tiny"])
    path = tmp_path / f"tiny{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    else:
        torch.save({"state_dict": model.state_dict()}, path)
    return model, path


@pytest.mark.parametrize(("legacy", "suffix"), [(False, ".safetensors"), (True, ".pt")])
def test_weights_from_a_local_checkpoint(tmp_path, legacy, suffix):
    model, path = _tiny_clip_checkpoint(tmp_path, legacy=legacy, suffix=suffix)
    enc = manyview.create("encoder", "open_clip_text", checkpoint=str(path)).eval()
    tokens = open_clip.tokenize(SENTENCES, context_length=32)
    with torch.no_grad():
        assert torch.allclose(enc(SENTENCES), model.eval().encode_text(tokens), atol=1e-5)


def test_weights_from_a_local_dir(tmp_path):
    model, _ = _tiny_clip_checkpoint(tmp_path, legacy=False, suffix=".pt")
    folder = tmp_path / "tiny-clip"
    folder.mkdir()
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": CONFIGS["tiny"]}))
    torch.save(model.state_dict(), folder / "open_clip_pytorch_model.bin")
    enc = OpenCLIPText(f"local-dir:{folder}").eval()
    tokens = open_clip.tokenize(SENTENCES, context_length=32)
    with torch.no_grad():
        assert torch.allclose(enc(SENTENCES), model.eval().encode_text(tokens), atol=1e-5)


def test_checkpoint_of_another_size_is_refused_clearly(tmp_path):
    _, path = _tiny_clip_checkpoint(tmp_path, legacy=False, suffix=".pt")
    with pytest.raises(ValueError, match="does not fit"):
        OpenCLIPText(checkpoint=str(path), width=128)


def test_longer_context_resizes_a_checkpoint(tmp_path):
    _, path = _tiny_clip_checkpoint(tmp_path, legacy=False, suffix=".pt")
    enc = OpenCLIPText(checkpoint=str(path), context_length=48)
    assert enc.context_length == 48 and enc(SENTENCES).shape == (3, 64)


def test_build_clip_is_a_custom_text_clip():
    clip = build_clip("tiny")
    assert isinstance(clip, open_clip.CustomTextCLIP)
    assert clip.manyview_config["text_cfg"]["context_length"] == 32
