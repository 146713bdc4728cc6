"""ddae_unet / ddae_dit: DDAE features of diffusers networks (tiny configs, CPU): the
features equal a hand-written noise + hook + pool, are seed-deterministic, leave no hook,
load from a local save_pretrained folder, and bad options or inputs are one-line errors."""

from __future__ import annotations

import json

import pytest
import torch

import manyview
from manyview.testing import check_encoder
from manyview_diffusion import DDAEDiT, DDAEUNet, FeatureTap


@pytest.fixture(scope="module")
def unet() -> DDAEUNet:
    torch.manual_seed(0)
    return DDAEUNet().eval()


@pytest.fixture(scope="module")
def dit() -> DDAEDiT:
    torch.manual_seed(0)
    return DDAEDiT().eval()


def _hand_features(encoder, x, block, labels=None):
    """√ᾱ_t x0 + √(1−ᾱ_t) ε with the encoder's seed, the whole network run, the block's
    output pooled by hand."""
    from diffusers import DDPMScheduler

    sched = DDPMScheduler(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02)
    abar = sched.alphas_cumprod[encoder.t]
    x0 = x * 2 - 1
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(encoder.seed))
    x_t = abar.sqrt() * x0 + (1 - abar).sqrt() * eps
    seen = {}
    module = dict(encoder.network.named_modules())[block]
    handle = module.register_forward_hook(lambda m, a, out: seen.setdefault("h", out))
    try:
        t = torch.full((x.shape[0],), encoder.t)
        encoder.network(x_t, t, **({} if labels is None else {"class_labels": labels}))
    finally:
        handle.remove()
    h = seen["h"][0] if isinstance(seen["h"], tuple) else seen["h"]
    return h.mean(dim=(2, 3)) if h.dim() == 4 else h.mean(dim=1)


def test_contract_and_registration():
    for name in ("ddae_unet", "ddae_dit"):
        check_encoder(manyview.create("encoder", name))
        assert manyview.entry("encoder", name).modality == "image"
        assert manyview.entry("encoder", name).plugin == "manyview-diffusion"


@pytest.mark.parametrize(
    ("block", "dim"), [("mid_block", 64), ("up_blocks.0", 64), ("up_blocks.1", 32)]
)
def test_unet_blocks_equal_the_hand_computation(block, dim):
    torch.manual_seed(0)
    enc = DDAEUNet(block=block).eval()
    x = enc.example_inputs(3)
    with torch.no_grad():
        out = enc(x)
        want = _hand_features(enc, x, block)
    assert enc.output_dim == dim and out.shape == (3, dim)
    torch.testing.assert_close(out, want, rtol=0, atol=1e-6)
    assert not enc.network._forward_hooks and not dict(enc.network.mid_block._forward_hooks)


def test_dit_token_mean_of_the_middle_block_with_the_null_label(dit):
    assert dit.block == "transformer_blocks.1" and dit.class_label == 10
    x = dit.example_inputs(2)
    with torch.no_grad():
        out = dit(x)
        want = _hand_features(dit, x, dit.block, labels=torch.full((2,), 10))
    assert out.shape == (2, dit.output_dim) == (2, 32)
    torch.testing.assert_close(out, want, rtol=0, atol=1e-6)
    with torch.no_grad():
        labelled = DDAEDiT(class_label=3).eval()
        labelled.load_state_dict(dit.state_dict())
        assert not torch.allclose(labelled(x), out)


def test_seeded_noise_is_deterministic(unet):
    x = unet.example_inputs(2)
    with torch.no_grad():
        a, b = unet(x), unet(x)
        g = unet(x, generator=torch.Generator().manual_seed(unet.seed))
        other = unet(x, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and torch.equal(a, g)
    assert not torch.allclose(a, other)


def test_uint8_images_and_no_rescale(unet):
    img = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)
    with torch.no_grad():
        torch.testing.assert_close(unet(img), unet(img.float() / 255), rtol=0, atol=1e-6)
    raw = DDAEUNet(rescale=False)
    assert torch.equal(raw.prepare(img.float() / 255), img.float() / 255)


def test_conditional_unet_runs_with_an_empty_condition():
    enc = DDAEUNet("UNet2DConditionModel", block="up_blocks.1")
    out = enc(enc.example_inputs(2))
    assert out.shape == (2, enc.output_dim) == (2, 32)


def test_hooks_are_removed_when_the_forward_raises(unet):
    tap = FeatureTap(unet.network, ["mid_block", "up_blocks.0"])

    def boom():
        unet.network.conv_in(torch.zeros(1, 3, 4, 4))
        raise RuntimeError("inside the forward")

    with pytest.raises(RuntimeError, match="inside the forward"):
        tap(boom)
    assert all(not m._forward_hooks for m in unet.network.modules())


def test_tap_reads_several_blocks_with_gradients(unet):
    x = unet.prepare(unet.example_inputs(2))
    t = torch.full((2,), 5)
    feats = FeatureTap(unet.network, ["mid_block", "up_blocks.1"], normalize=True)(
        lambda: unet.network(x, t)
    )
    assert feats["mid_block"].shape == (2, 64) and feats["up_blocks.1"].shape == (2, 32)
    torch.testing.assert_close(feats["up_blocks.1"].norm(dim=1), torch.ones(2))
    feats["mid_block"].sum().backward()
    assert unet.network.down_blocks[0].resnets[0].conv1.weight.grad is not None
    unet.network.zero_grad(set_to_none=True)


def test_loads_a_local_save_pretrained_folder(tmp_path, unet, dit):
    unet.network.save_pretrained(tmp_path / "unet")
    dit.network.save_pretrained(tmp_path / "pipe" / "transformer")
    (tmp_path / "pipe" / "model_index.json").write_text("{}")
    x = unet.example_inputs(2)
    with torch.no_grad():
        loaded = DDAEUNet(pretrained=tmp_path / "unet").eval()
        torch.testing.assert_close(loaded(x), unet(x), rtol=0, atol=0)
        sub = DDAEDiT(pretrained=tmp_path / "pipe", subfolder="transformer").eval()
        xd = dit.example_inputs(2)
        torch.testing.assert_close(sub(xd), dit(xd), rtol=0, atol=0)
    with pytest.raises(ValueError, match="pipeline folder: set subfolder"):
        DDAEDiT(pretrained=tmp_path / "pipe")
    with pytest.raises(
        ValueError, match="describes a 'UNet2DModel', not one of DiTTransformer2DModel"
    ):
        DDAEDiT(pretrained=tmp_path / "unet")
    with pytest.raises(ValueError, match="does not exist"):
        DDAEUNet(pretrained=tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"not a diffusers model folder: it has no config\.json"):
        DDAEUNet(pretrained=tmp_path / "empty")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text('{"_class_name":\n "UNet2DModel",,}')
    with pytest.raises(ValueError, match=r"not valid JSON \(line 2\)"):
        DDAEUNet(pretrained=tmp_path / "bad")
    (tmp_path / "noweights").mkdir()
    cfg = json.loads((tmp_path / "unet" / "config.json").read_text())
    (tmp_path / "noweights" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="cannot load the UNet2DModel"):
        DDAEUNet(pretrained=tmp_path / "noweights")
    with pytest.raises(ValueError, match="config or pretrained, not both"):
        DDAEUNet(pretrained=tmp_path / "unet", config={"in_channels": 1})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"block": "up_blocks.7"},
            r"block 'up_blocks.7' is not a module of UNet2DModel.*valid blocks: .*up_blocks.1, mid_block",
        ),
        ({"t": 1000}, r"t must be a timestep of the schedule, in \[0, 999\], got 1000"),
        ({"t": -1}, "t must be an int >= 0"),
        (
            {"config": {"in_chanels": 1}},
            "config key 'in_chanels' is not an argument of diffusers UNet2DModel; did you mean 'in_channels'",
        ),
        (
            {"config": {"block_out_channels": [32, 64, 128]}},
            "config: UNet2DModel refuses it: Must provide the same number",
        ),
        ({"network": "UNet3D"}, "network must be one of UNet2DModel, UNet2DConditionModel"),
        ({"beta_schedule": "cosine"}, "beta_schedule 'cosine' is not one of"),
        ({"pool": "max"}, "unknown pool .max. \\(choose from"),
    ],
)
def test_bad_unet_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DDAEUNet(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"class_label": 11}, r"class_label must be an int in \[0, 10\]"),
        (
            {"block": "blocks.0"},
            "valid blocks: pos_embed, transformer_blocks.0, transformer_blocks.1",
        ),
        ({"pool": "gap"}, r"pool='gap' expects \(N, C, H, W\)"),
    ],
)
def test_bad_dit_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DDAEDiT(**kwargs)


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (torch.rand(2, 1, 16, 16), "takes 3-channel images, got 1.*set config in_channels = 1"),
        (torch.rand(2, 3, 8, 8), "takes 16x16 images, got 8x8"),
        (torch.rand(3, 16, 16), r"expects images \(N, C, H, W\)"),
        (torch.zeros(2, 3, 16, 16, dtype=torch.int64), "float or uint8"),
        ([1, 2], r"expects images \(N, C, H, W\), got list"),
    ],
)
def test_bad_input(unet, bad, match):
    with pytest.raises(ValueError, match=match):
        unet(bad)


def test_without_sample_size_the_size_must_fit_the_downsampling():
    enc = DDAEUNet(config={"sample_size": None})
    assert enc(torch.rand(1, 3, 8, 8)).shape == (1, 64)
    with pytest.raises(ValueError, match="multiples of 2"):
        enc(torch.rand(1, 3, 7, 8))
