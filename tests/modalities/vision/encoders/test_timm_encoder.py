"""The timm encoder: models by name (offline), local weights, bad input."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

import manyview
from manyview.testing import check_encoder
from manyview_vision.encoders import TimmEncoder, WeightsNotFoundError

TIMM_CASES = [
    ("resnet18", {"in_chans": 1}, (1, 32, 32), 512),
    ("resnet18", {"in_chans": 3}, (3, 32, 32), 512),
    ("vit_tiny_patch16_224", {"img_size": 32}, (3, 32, 32), 192),
    ("mobilenetv3_small_050", {}, (3, 32, 32), 1024),  # head_hidden_size, not num_features
]


@pytest.mark.parametrize(("model", "kwargs", "shape", "dim"), TIMM_CASES, ids=lambda v: str(v))
def test_timm_forward_backward(model, kwargs, shape, dim):
    enc = manyview.create("encoder", "timm", model=model, **kwargs)
    assert enc.output_dim == dim
    x = torch.rand(2, *shape, requires_grad=True)
    out = enc(x)
    assert out.shape == (2, dim) and torch.isfinite(out).all()
    out.square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    grads = [p.grad for p in enc.parameters() if p.requires_grad]
    assert grads and all(g is not None for g in grads[:3])


def test_timm_example_inputs_and_contract():
    vit = TimmEncoder("vit_tiny_patch16_224", img_size=(16, 32))
    assert vit.input_size == (3, 16, 32) and vit.example_inputs(3).shape == (3, 3, 16, 32)
    check_encoder(vit)
    resnet = TimmEncoder("resnet18", in_chans=1)
    assert resnet.example_inputs(2).shape == (2, 1, 64, 64)
    assert TimmEncoder("vit_tiny_patch16_224").input_size == (3, 224, 224)  # its fixed size


def test_timm_gray_batch_and_uint8():
    enc = TimmEncoder("resnet18", in_chans=1).eval()
    x = torch.randint(0, 256, (2, 16, 16), dtype=torch.uint8)
    torch.testing.assert_close(enc(x), enc(x.float().unsqueeze(1) / 255))


def test_timm_unknown_name_suggests():
    with pytest.raises(ValueError, match=r"unknown model 'resnet19'.*did you mean.*'resnet18'"):
        manyview.create("encoder", "timm", model="resnet19")
    with pytest.raises(ValueError, match="vit_tiny_patch16_224"):
        TimmEncoder("vit_tiny_patch16")


def test_timm_refuses_downloads_and_bad_options():
    with pytest.raises(ValueError, match="nothing is downloaded"):
        TimmEncoder("hf-hub:timm/resnet18.a1_in1k")
    with pytest.raises(ValueError, match="pretrained=False"):
        TimmEncoder("resnet18", pretrained=True)
    with pytest.raises(ValueError, match="does not take img_size"):
        TimmEncoder("resnet18", img_size=32)
    with pytest.raises(ValueError, match="in_chans"):
        TimmEncoder("resnet18", in_chans=0)


def test_timm_bad_input():
    enc = TimmEncoder("resnet18", in_chans=3)
    with pytest.raises(
        ValueError, match=r"expects images \(N, 3, H, W\).*got shape \(2, 1, 8, 8\)"
    ):
        enc(torch.rand(2, 1, 8, 8))
    with pytest.raises(ValueError, match="int64"):
        enc(torch.zeros(2, 3, 8, 8, dtype=torch.int64))
    vit = TimmEncoder("vit_tiny_patch16_224", img_size=32)
    with pytest.raises(ValueError, match="built for 32 x 32 images, got 64 x 64"):
        vit(torch.rand(1, 3, 64, 64))


def small_resnet_state(in_chans=3, classes=10):
    import timm

    model = timm.create_model("resnet18", pretrained=False, num_classes=classes, in_chans=in_chans)
    return model, model.state_dict()


def test_load_safetensors(tmp_path):
    model, state = small_resnet_state(classes=10)  # with a classifier: dropped on load
    path = tmp_path / "resnet18.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    enc = manyview.create("encoder", "timm", model="resnet18", weights=str(path)).eval()
    torch.testing.assert_close(enc.model.conv1.weight, state["conv1.weight"])
    model.eval().reset_classifier(0)
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(enc(x), model(x))


def test_load_timm_checkpoint_with_prefixes(tmp_path):
    _, state = small_resnet_state(classes=0)
    # A training checkpoint from DDP: {"state_dict": {"module.<key>": ...}, "epoch": ...}
    ckpt = tmp_path / "checkpoint.pth.tar"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}, ckpt)
    enc = TimmEncoder("resnet18", weights=ckpt)
    assert isinstance(enc.model.fc, torch.nn.Identity)
    torch.testing.assert_close(enc.model.layer1[0].conv1.weight, state["layer1.0.conv1.weight"])
    # A manyview model.safetensors: keys under encoders.<modality>.model.
    path = tmp_path / "model.safetensors"
    save_file({f"encoders.image.model.{k}": v.contiguous() for k, v in state.items()}, str(path))
    enc = TimmEncoder("resnet18", weights=path)
    torch.testing.assert_close(enc.model.bn1.weight, state["bn1.weight"])
    both = {f"encoders.{m}.model.{k}": v.clone() for m in "ab" for k, v in state.items()}
    save_file(both, str(path))
    with pytest.raises(ValueError, match="weights_prefix"):
        TimmEncoder("resnet18", weights=path)
    TimmEncoder("resnet18", weights=path, weights_prefix="encoders.b.model.")


def test_load_rgb_weights_into_one_channel(tmp_path):
    _, state = small_resnet_state(in_chans=3, classes=0)
    path = tmp_path / "rgb.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    enc = TimmEncoder("resnet18", in_chans=1, weights=path)
    torch.testing.assert_close(enc.model.conv1.weight, state["conv1.weight"].sum(1, keepdim=True))


def test_missing_or_unfit_weights(tmp_path):
    missing = tmp_path / "nope.safetensors"
    with pytest.raises(WeightsNotFoundError, match=r"does not exist.*nothing is downloaded"):
        TimmEncoder("resnet18", weights=missing)
    with pytest.raises(ValueError):  # also a ValueError, so configs report it in one line
        TimmEncoder("resnet18", weights=missing)
    other = tmp_path / "vit.safetensors"
    vit = TimmEncoder("vit_tiny_patch16_224", img_size=32)
    save_file({k: v.contiguous() for k, v in vit.model.state_dict().items()}, str(other))
    with pytest.raises(ValueError, match="do not fit"):
        TimmEncoder("resnet18", weights=other)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="could not read"):
        TimmEncoder("resnet18", weights=garbage)
