"""The dual-time denoisers: each backbone returns V of x_t's shape, depends on s (exactly not
at all with zero_init_second_time), passes gradients to its parameters and is deterministic;
the UNets and Flux feed 1000 t and 1000 (t − s) to their sinusoidal embeddings; bad inputs
and models without the dual-time signature are one-line errors."""

from __future__ import annotations

import pytest
import torch

import manyview_selfeval
from manyview_selfeval import (
    TINY_CONFIGS,
    DualTimeDenoiser,
    FluxDenoiser,
    MLPDenoiser,
    UNetDenoiser,
    check_denoiser,
    sinusoidal,
)

N = 3


def _mlp(**kw):
    return MLPDenoiser(2, 8, hidden=32, layers=3, time_dim=16, **kw), (N, 2), (N, 8)


def _mlp_add(**kw):
    return MLPDenoiser(2, 8, hidden=32, time_dim=16, cond_mode="add", **kw), (N, 2), (N, 4, 8)


def _unet_cond(**kw):
    return UNetDenoiser(**kw), (N, 1, 8, 8), (N, 32)


def _unet_cond_tokens(**kw):
    return UNetDenoiser("UNet2DConditionModel", cond_dim=12, **kw), (N, 1, 8, 8), (N, 5, 12)


def _unet(**kw):
    return UNetDenoiser("UNet2DModel", cond_dim=10, **kw), (N, 1, 8, 8), (N, 10)


def _flux(**kw):
    return FluxDenoiser(**kw), (N, 4, 8, 8), (N, 6, 32)


def _flux_digits(**kw):
    config = {"in_channels": 4, "out_channels": 4}
    return FluxDenoiser(config=config, cond_dim=12, **kw), (N, 1, 8, 8), (N, 12)


BACKBONES = {
    "mlp": _mlp,
    "mlp_add": _mlp_add,
    "unet_cond": _unet_cond,
    "unet_cond_tokens": _unet_cond_tokens,
    "unet": _unet,
    "flux": _flux,
    "flux_digits": _flux_digits,
}


def _inputs(x_shape, c_shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(x_shape, generator=g)
    cond = torch.randn(c_shape, generator=g)
    t = torch.tensor([0.9, 0.5, 0.2])
    return x, t, cond


def _one_line(excinfo, *needles):
    text = str(excinfo.value)
    assert "\n" not in text, text
    for needle in needles:
        assert needle in text, text
    return text


@pytest.mark.parametrize("name", list(BACKBONES))
def test_v_has_the_shape_of_x_and_depends_on_s(name):
    torch.manual_seed(0)
    model, x_shape, c_shape = BACKBONES[name]()
    x, t, cond = _inputs(x_shape, c_shape)
    v1 = model(x, t, 0.5 * t, cond)
    v2 = model(x, t, 0.1 * t, cond)
    assert isinstance(model, DualTimeDenoiser)
    assert v1.shape == x.shape and v1.dtype == x.dtype and torch.isfinite(v1).all()
    for i in range(N):  # every sample's own s changes its own output
        assert (v1[i] - v2[i]).abs().max() > 1e-6
    torch.testing.assert_close(model(x, t, 0.5 * t, cond), v1, rtol=0, atol=0)  # deterministic


@pytest.mark.parametrize("name", list(BACKBONES))
def test_zero_init_second_time_makes_s_a_no_op(name):
    torch.manual_seed(0)
    model, x_shape, c_shape = BACKBONES[name](zero_init_second_time=True)
    x, t, cond = _inputs(x_shape, c_shape)
    v1 = model(x, t, t, cond)
    v2 = model(x, t, torch.zeros(N), cond)
    assert torch.equal(v1, v2)
    layer = model.second_time_layer()
    assert not layer.weight.any() and not layer.bias.any()
    # and it still learns: the zeroed layer gets a gradient from a loss on V
    model(x, t, 0.3 * t, cond).square().sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", list(BACKBONES))
def test_gradients_reach_the_parameters(name):
    torch.manual_seed(0)
    model, x_shape, c_shape = BACKBONES[name]()
    x, t, cond = _inputs(x_shape, c_shape)
    x.requires_grad_(True)
    model(x, t, 0.5 * t, cond).square().mean().backward()
    params = dict(model.named_parameters())
    missing = [k for k, p in params.items() if p.grad is None]
    assert not missing, missing
    assert all(torch.isfinite(p.grad).all() for p in params.values())
    assert model.second_time_layer().weight.grad.abs().sum() > 0
    assert x.grad is not None and x.grad.abs().sum() > 0
    nonzero = sum(int(p.grad.abs().sum() > 0) for p in params.values())
    assert nonzero >= 0.9 * len(params)


@pytest.mark.parametrize("name", ["mlp", "unet_cond", "unet", "flux"])
def test_the_condition_changes_the_output(name):
    torch.manual_seed(0)
    model, x_shape, c_shape = BACKBONES[name]()
    x, t, cond = _inputs(x_shape, c_shape)
    assert (model(x, t, t, cond) - model(x, t, t, cond + 1.0)).abs().max() > 1e-6


def test_second_time_gap_or_s():
    t, s = torch.tensor([0.9, 0.4]), torch.tensor([0.3, 0.4])
    gap = MLPDenoiser(2, 4)
    assert torch.equal(gap.second(t, s), t - s)
    just_s = MLPDenoiser(2, 4, second_time="s")
    assert torch.equal(just_s.second(t, s), s)
    with pytest.raises(ValueError) as e:
        MLPDenoiser(2, 4, second_time="gpa")
    _one_line(e, "second_time", "'gap'")


def _capture(module, store):
    return module.register_forward_pre_hook(lambda m, args: store.append(args[0].detach()))


@pytest.mark.parametrize("second_time", ["gap", "s"])
def test_unets_embed_1000_t_and_1000_second(second_time):
    """class_embed_type='timestep': class_labels go through the UNet's time_proj and its own
    TimestepEmbedding (class_embedding); the inputs are sin features of 1000 t, 1000 (t − s)."""
    for network, c_dim in (("UNet2DConditionModel", 32), ("UNet2DModel", 128)):
        model = UNetDenoiser(network, second_time=second_time)
        assert model.cond_dim == c_dim
        unet = model.network
        t, s = torch.tensor([0.9, 0.25]), torch.tensor([0.3, 0.25])
        first, second = [], []
        h1, h2 = _capture(unet.time_embedding, first), _capture(unet.class_embedding, second)
        model(torch.randn(2, 1, 8, 8), t, s, torch.randn(2, c_dim))
        h1.remove(), h2.remove()
        other = t - s if second_time == "gap" else s
        torch.testing.assert_close(first[0], unet.time_proj(1000 * t))
        torch.testing.assert_close(second[0], unet.time_proj(1000 * other))


@pytest.mark.parametrize("second_time", ["gap", "s"])
def test_flux_embeds_1000_t_and_1000_second_through_guidance(second_time):
    """diffusers' Flux multiplies timestep and guidance by 1000 itself: the wrapper passes t
    and t − s in [0, 1], so the embedders see sin features of 1000 t and 1000 (t − s)."""
    model = FluxDenoiser(second_time=second_time)
    emb = model.network.time_text_embed
    t, s = torch.tensor([0.9, 0.25]), torch.tensor([0.3, 0.25])
    first, second = [], []
    h1, h2 = _capture(emb.timestep_embedder, first), _capture(emb.guidance_embedder, second)
    model(torch.randn(2, 4, 8, 8), t, s, torch.randn(2, 32))
    h1.remove(), h2.remove()
    other = t - s if second_time == "gap" else s
    torch.testing.assert_close(first[0], emb.time_proj(1000 * t))
    torch.testing.assert_close(second[0], emb.time_proj(1000 * other))


def test_unet2d_adds_the_pooled_condition_to_the_time_embedding_for_one_call():
    model = UNetDenoiser("UNet2DModel", cond_dim=10)
    unet = model.network
    x, t, cond = _inputs((N, 1, 8, 8), (N, 4, 10))
    out = []
    handle = unet.time_embedding.register_forward_hook(lambda m, i, o: out.append(o.detach()))
    model(x, t, t, cond)
    handle.remove()
    # our hook ran before the capturing one: the output the blocks read includes the cond
    plain = unet.time_embedding(unet.time_proj(1000 * t))
    torch.testing.assert_close(out[0], plain + model.cond_proj(cond.mean(dim=1)))
    assert not unet.time_embedding._forward_hooks  # removed after the call
    # pooled tokens = the same single token
    torch.testing.assert_close(model(x, t, t, cond), model(x, t, t, cond.mean(dim=1, keepdim=True)))


def test_unet_cond_tokens_are_cross_attention_states():
    model = UNetDenoiser()
    x, t, cond = _inputs((N, 1, 8, 8), (N, 32))
    assert isinstance(model.cond_proj, torch.nn.Identity)
    torch.testing.assert_close(model(x, t, t, cond), model(x, t, t, cond[:, None]))
    projected = UNetDenoiser(cond_dim=12)
    assert isinstance(projected.cond_proj, torch.nn.Linear)
    assert projected.cond_proj.in_features == 12 and projected.cond_proj.out_features == 32


def test_flux_patches_ids_and_condition():
    model = FluxDenoiser(config={"in_channels": 4, "out_channels": 4})
    x = torch.arange(2 * 1 * 4 * 6, dtype=torch.float32).view(2, 1, 4, 6)
    tokens = model.patchify(x)
    assert tokens.shape == (2, 6, 4)
    # token (row 0, col 1) is the 2x2 patch x[:, :, 0:2, 2:4] in (channel, row, col) order
    torch.testing.assert_close(tokens[:, 1], x[:, :, 0:2, 2:4].reshape(2, 4))
    torch.testing.assert_close(model.unpatchify(tokens, 4, 6), x)
    ids = model.image_ids(4, 6, x.device, x.dtype)
    assert ids.shape == (6, 3)  # no batch axis
    assert ids[:, 0].eq(0).all() and ids[1].tolist() == [0.0, 0.0, 1.0]
    assert ids[3].tolist() == [0.0, 1.0, 0.0]
    assert isinstance(model.txt_proj, torch.nn.Identity)
    assert isinstance(model.pooled_proj, torch.nn.Identity)
    other = FluxDenoiser(config={"in_channels": 4, "out_channels": 4}, patch=1, cond_dim=7)
    assert other.channels == 4 and isinstance(other.txt_proj, torch.nn.Linear)
    out = other(torch.randn(2, 4, 3, 5), torch.ones(2), torch.zeros(2), torch.randn(2, 7))
    assert out.shape == (2, 4, 3, 5)


@pytest.mark.parametrize("dim", [16, 7])
def test_sinusoidal_features_are_diffusers(dim):
    from diffusers.models.embeddings import get_timestep_embedding

    t = torch.tensor([0.0, 0.3, 1.0])
    expected = get_timestep_embedding(1000 * t, dim, flip_sin_to_cos=True, downscale_freq_shift=0)
    torch.testing.assert_close(sinusoidal(t, dim), expected)


def test_x0_from_is_x_minus_t_v():
    x, v = torch.randn(3, 2), torch.randn(3, 2)
    t = torch.tensor([1.0, 0.5, 0.0])
    torch.testing.assert_close(DualTimeDenoiser.x0_from(x, t, v), x - t[:, None] * v)
    torch.testing.assert_close(DualTimeDenoiser.x0_from(x, 0.5, v), x - 0.5 * v)
    img = torch.randn(3, 1, 2, 2)
    torch.testing.assert_close(
        DualTimeDenoiser.x0_from(img, t, img), img * (1 - t).view(-1, 1, 1, 1)
    )


def test_scalar_times_broadcast_and_s_is_clamped_within_rounding():
    model = MLPDenoiser(2, 4)
    x, cond = torch.randn(N, 2), torch.randn(N, 4)
    v = model(x, 0.5, torch.tensor(0.2), cond)
    torch.testing.assert_close(v, model(x, torch.full((N,), 0.5), torch.full((N,), 0.2), cond))
    # s a rounding error above t is t
    torch.testing.assert_close(model(x, 0.5, 0.5 + 1e-7, cond), model(x, 0.5, 0.5, cond))


def test_save_pretrained_folders_load_offline(tmp_path):
    torch.manual_seed(0)
    unet = UNetDenoiser("UNet2DModel", cond_dim=10)
    unet.network.save_pretrained(tmp_path / "unet")
    loaded = UNetDenoiser(pretrained=tmp_path / "unet", cond_dim=10)
    assert type(loaded.network).__name__ == "UNet2DModel"
    loaded.cond_proj.load_state_dict(unet.cond_proj.state_dict())
    x, t, cond = _inputs((N, 1, 8, 8), (N, 10))
    torch.testing.assert_close(loaded(x, t, t / 2, cond), unet(x, t, t / 2, cond))
    flux = FluxDenoiser()
    flux.network.save_pretrained(tmp_path / "pipe" / "transformer")
    again = FluxDenoiser(pretrained=tmp_path / "pipe", subfolder="transformer")
    x, t, cond = _inputs((N, 4, 8, 8), (N, 32))
    torch.testing.assert_close(again(x, t, t / 2, cond), flux(x, t, t / 2, cond))
    with pytest.raises(ValueError) as e:
        UNetDenoiser(pretrained=tmp_path / "pipe", subfolder="transformer")
    _one_line(e, "FluxTransformer2DModel", "UNet2DConditionModel")


def test_a_unet_without_the_timestep_class_embedding_is_refused(tmp_path):
    import diffusers

    config = {**TINY_CONFIGS["UNet2DModel"], "class_embed_type": None}
    diffusers.UNet2DModel(**config).save_pretrained(tmp_path)
    with pytest.raises(ValueError) as e:
        UNetDenoiser(pretrained=tmp_path)
    _one_line(e, "class_embed_type='timestep'")
    with pytest.raises(ValueError) as e:
        UNetDenoiser(diffusers.UNet2DModel(**config))
    _one_line(e, "class_embed_type='timestep'")


@pytest.mark.parametrize(
    ("make", "needles"),
    [
        (lambda: UNetDenoiser(config={"class_embed_type": "identity"}), ["timestep"]),
        (lambda: UNetDenoiser(config={"in_chanels": 1}), ["in_chanels", "in_channels"]),
        (lambda: UNetDenoiser("UNet2DConditionModl"), ["did you mean", "UNet2DConditionModel"]),
        (lambda: UNetDenoiser(config={"out_channels": 2}), ["out_channels=2"]),
        (lambda: UNetDenoiser(config={"norm_num_groups": 7}), ["refuses"]),
        (lambda: UNetDenoiser(pretrained="/nonexistent/folder"), ["does not exist"]),
        (lambda: UNetDenoiser(config={}, pretrained="/x"), ["not both"]),
        (lambda: UNetDenoiser(config=[1]), ["table"]),
        (lambda: FluxDenoiser(config={"guidance_embeds": False}), ["guidance_embeds"]),
        (lambda: FluxDenoiser(config={"in_channels": 6, "out_channels": 6}), ["patch²"]),
        (lambda: FluxDenoiser(torch.nn.Linear(2, 2)), ["FluxTransformer2DModel"]),
        (lambda: MLPDenoiser(2, 0), ["cond_dim"]),
        (lambda: MLPDenoiser(2, 4, cond_mode="cat"), ["cond_mode"]),
        (lambda: MLPDenoiser(2, 4, zero_init_second_time="yes"), ["zero_init_second_time"]),
    ],
)
def test_bad_options_are_one_line(make, needles):
    with pytest.raises(ValueError) as e:
        make()
    _one_line(e, *needles)


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (lambda x, t, c: (x, t, t + 0.1, c), ["s must not exceed t"]),
        (lambda x, t, c: (x, t * 2, t, c), ["t must lie in [0, 1]"]),
        (lambda x, t, c: (x, t, -t, c), ["s must lie in [0, 1]"]),
        (lambda x, t, c: (x * float("nan"), t, t, c), ["x_t", "non-finite"]),
        (lambda x, t, c: (x, t * float("nan"), t, c), ["non-finite"]),
        (lambda x, t, c: (x, t, t, c * float("inf")), ["cond", "non-finite"]),
        (lambda x, t, c: (x, t[:2], t, c), ["t must have shape (3,)"]),
        (lambda x, t, c: (x, t, "0.1", c), ["s must be a float tensor"]),
        (lambda x, t, c: (x, t, t, c[:2]), ["cond must be (3, 32)"]),
        (lambda x, t, c: (x, t, t, c[:, :5]), ["cond_dim 32"]),
        (lambda x, t, c: (x, t, t, None), ["cond must be a float tensor"]),
        (lambda x, t, c: (x[:, :, :7, :7], t, t, c), ["multiples of 2"]),
        (lambda x, t, c: (x.repeat(1, 3, 1, 1), t, t, c), ["(N, 1, H, W)"]),
        (lambda x, t, c: (x.long(), t, t, c), ["x_t must be a float tensor"]),
    ],
)
def test_bad_inputs_are_one_line(args, needles):
    model = UNetDenoiser()
    x, t, cond = _inputs((N, 1, 8, 8), (N, 32))
    with pytest.raises(ValueError) as e:
        model(*args(x, t, cond))
    _one_line(e, "unet_denoiser", *needles)


def test_flux_and_mlp_sample_shapes_are_checked():
    with pytest.raises(ValueError) as e:
        FluxDenoiser()(torch.randn(2, 4, 7, 8), torch.ones(2), torch.ones(2), torch.randn(2, 32))
    _one_line(e, "multiples of the patch (2)")
    with pytest.raises(ValueError) as e:
        MLPDenoiser(2, 4)(torch.randn(2, 3), torch.ones(2), torch.ones(2), torch.randn(2, 4))
    _one_line(e, "(N, 2)")


def test_check_denoiser_accepts_the_backbones_and_returns_v():
    model, x_shape, c_shape = _flux()
    x, t, cond = _inputs(x_shape, c_shape)
    v = check_denoiser(model, (x, cond))
    assert v.shape == x.shape and not v.requires_grad
    torch.testing.assert_close(v, model(x, torch.full((N,), 0.75), torch.full((N,), 0.25), cond))
    v = check_denoiser(model, (x, t, t, cond))
    torch.testing.assert_close(v, model(x, t, t, cond).detach())
    check_denoiser(lambda x_t, t, s, cond: x_t - s.view(-1, 1), (torch.randn(2, 3), None))


def test_check_denoiser_errors_are_one_line():
    x, cond = torch.randn(2, 1, 8, 8), torch.randn(2, 32)
    with pytest.raises(ValueError) as e:
        check_denoiser(lambda x_t, t: x_t, (x, cond))
    _one_line(e, "without the dual-time signature", "model(x_t, t, s, cond)")
    import diffusers

    unet = diffusers.UNet2DModel(**{**TINY_CONFIGS["UNet2DModel"], "class_embed_type": None})
    with pytest.raises(ValueError) as e:  # a diffusers model is no dual-time denoiser
        check_denoiser(unet, (x, cond))
    _one_line(e, "check_denoiser")
    with pytest.raises(ValueError) as e:
        check_denoiser(lambda x_t, t, s, cond: x_t[:, :1, :4], (x, cond))
    _one_line(e, "V of shape (2, 1, 4, 8)", "x_t's shape")
    with pytest.raises(ValueError) as e:
        check_denoiser(lambda x_t, t, s, cond: (x_t,), (x, cond))
    _one_line(e, "not a tensor")
    with pytest.raises(ValueError) as e:
        check_denoiser(lambda x_t, t, s, cond: x_t / 0, (x, cond))
    _one_line(e, "non-finite")
    with pytest.raises(ValueError) as e:
        check_denoiser(UNetDenoiser(), (x, torch.randn(2, 7)))
    _one_line(e, "failed on the example", "cond_dim 32")
    with pytest.raises(ValueError) as e:
        check_denoiser(UNetDenoiser(), (x,))
    _one_line(e, "(x_t, cond)")
    with pytest.raises(ValueError) as e:
        check_denoiser(3, (x, cond))
    _one_line(e, "callable")


def test_checks_can_be_switched_off():
    model = MLPDenoiser(2, 4)
    x, cond = torch.randn(2, 2), torch.randn(2, 4)
    model.checks = False
    model(x, torch.ones(2), torch.ones(2) * 2, cond)  # s > t: not checked any more


def test_the_package_exports_them_lazily():
    for name in ("DualTimeDenoiser", "MLPDenoiser", "UNetDenoiser", "FluxDenoiser"):
        assert name in manyview_selfeval.__all__
        assert getattr(manyview_selfeval, name).__module__ == "manyview_selfeval.denoisers"
