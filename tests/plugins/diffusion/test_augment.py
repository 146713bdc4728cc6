"""EDM augmentation: p = 0 is the identity, the labels say what was done (flips exactly,
integer shifts as mirrored rolls, fractional shifts / rotations / scalings of a linear ramp),
only augmented images are resampled, one generator drives it all; AugmentConditioned is
exactly the plain network at zero labels (every class, both places), the DiT output layer
gets the label, gradients reach map_augment, and it composes with SelfConditioned."""

from __future__ import annotations

import math

import pytest
import torch

from manyview_diffusion import (
    AugmentConditioned,
    EDMAugment,
    EDMLoss,
    SelfConditioned,
    build_network,
    network_call,
    unwrap_network,
)

OFF = {"xflip": 0, "yflip": 0, "scale": 0, "rotate_frac": 0, "aniso": 0, "translate_frac": 0}
CLASSES = ("UNet2DModel", "UNet2DConditionModel", "DiTTransformer2DModel")
T = torch.tensor([3, 500])


def _images(n=16, c=3, h=16, w=16, dtype=torch.float32):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(1), dtype=dtype) * 2 - 1


def _only(name, p=1.0, **extra):
    return EDMAugment(p=p, **{**OFF, name: 1, **extra})


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------------------------
# EDMAugment


def test_p_zero_is_the_identity_with_zero_labels():
    x = _images()
    aug = EDMAugment(p=0)
    y, labels = aug(x, generator=_gen())
    assert torch.equal(y, x)
    assert labels.shape == (16, 9) and labels.dtype == torch.float32
    assert not labels.any()


def test_edm_cifar_defaults_nine_labels_and_probabilities():
    aug = EDMAugment()
    assert aug.p == 0.12 and aug.label_dim == 9
    assert aug.enabled == ("xflip", "yflip", "scale", "rotate_frac", "aniso", "translate_frac")
    x = _images(n=3000, c=1, h=8, w=8)
    y, labels = aug(x, generator=_gen())
    assert y.shape == x.shape and labels.shape == (3000, 9)
    flipped = labels[:, 0]
    assert set(flipped.unique().tolist()) == {0.0, 1.0}
    # xflip = 1e8: always chosen, so the flip is a fair coin whatever p is
    assert abs(flipped.mean().item() - 0.5) < 0.04
    # yflip: chosen with p, then a fair coin; the geometric ones: chosen with p
    for columns, want in (([1], 0.06), ([2], 0.12), ([3, 4], 0.12), ([5, 6], 0.12), ([7, 8], 0.12)):
        share = labels[:, columns].ne(0).any(1).float().mean().item()
        assert abs(share - want) < 0.025, (columns, share)
    # an image none of the geometric transforms touched is returned exactly (flips aside)
    still = ~labels[:, 2:].ne(0).any(1)
    flips = x.flip(3).where(flipped.bool().view(-1, 1, 1, 1), x)
    flips = flips.flip(2).where(labels[:, 1].bool().view(-1, 1, 1, 1), flips)
    assert torch.equal(y[still], flips[still])
    assert not torch.equal(y[~still], flips[~still])


@pytest.mark.parametrize(("name", "dim"), [("xflip", 3), ("yflip", 2)])
def test_flip_labels(name, dim):
    x = _images(n=32)
    y, labels = _only(name)(x, generator=_gen())
    assert labels.shape == (32, 1)
    on = labels[:, 0] == 1
    assert 0 < on.sum() < 32 and set(labels[:, 0].tolist()) <= {0.0, 1.0}
    assert torch.equal(y[on], torch.flip(x[on], [dim]))
    assert torch.equal(y[~on], x[~on])


def test_integer_translation_is_a_mirrored_roll():
    x = _images(n=24, h=16, w=12)
    aug = _only("translate_int", translate_int_max=0.25)
    y, labels = aug(x, generator=_gen())
    assert labels.shape == (24, 2)
    tx = (labels[:, 0] * 12 * 0.25).round().long()
    ty = (labels[:, 1] * 16 * 0.25).round().long()
    torch.testing.assert_close(labels[:, 0] * 12 * 0.25, tx.float())  # whole pixels
    assert (tx != 0).sum() > 12 and tx.abs().max() <= 3 and ty.abs().max() <= 4
    for i in range(24):
        a, b = int(tx[i]), int(ty[i])
        rolled = torch.roll(x[i], shifts=(-b, a), dims=(1, 2))  # content moves by (+a, −b)
        rows = slice(max(-b, 0), 16 - max(b, 0))
        cols = slice(max(a, 0), 12 - max(-a, 0))
        assert torch.equal(y[i][:, rows, cols], rolled[:, rows, cols])
        if a > 0:  # the border is mirrored, not wrapped: column j < a reads column a − j
            source = slice(rows.start + b, rows.stop + b)
            assert torch.equal(y[i][:, rows, 0], x[i][:, source, a])


def _ramp(h=24, w=24):
    yy, xx = torch.meshgrid(
        torch.arange(h) - (h - 1) / 2, torch.arange(w) - (w - 1) / 2, indexing="ij"
    )
    return xx.double(), yy.double()


def _ramp_image(x, y):
    return torch.stack([0.05 * x + 0.02 * y, -0.03 * x + 0.04 * y])


@pytest.mark.parametrize("name", ["translate_frac", "rotate_frac", "scale"])
def test_geometric_transforms_match_their_labels(name):
    """A linear ramp moved by the transform its label names: content shifted by
    w · size · 0.125, rotated by θ (labels cos θ − 1, sin θ), scaled by 2^(0.2 w)."""
    xx, yy = _ramp()
    x = _ramp_image(xx, yy)[None].repeat(24, 1, 1, 1)
    y, labels = _only(name)(x, generator=_gen())
    assert y.dtype == torch.float64
    for i in range(24):
        margin = 6
        if name == "translate_frac":
            tx, ty = (labels[i] * 24 * 0.125).tolist()
            px, py = xx - tx, yy - ty
            margin = int(max(abs(tx), abs(ty))) + 4
        elif name == "rotate_frac":
            c, s = labels[i, 0].item() + 1, labels[i, 1].item()
            assert abs(c * c + s * s - 1) < 1e-5
            px, py = c * xx - s * yy, s * xx + c * yy
        else:
            factor = 2 ** (0.2 * labels[i, 0].item())
            px, py = xx / factor, yy / factor
        inner = (slice(None), slice(margin, -margin), slice(margin, -margin))
        torch.testing.assert_close(y[i][inner], _ramp_image(px, py)[inner], atol=1e-2, rtol=0)


def test_rotation_angles_cover_the_circle_and_aniso_labels():
    _, labels = _only("rotate_frac")(_images(n=400, c=1, h=8, w=8), generator=_gen())
    theta = torch.atan2(labels[:, 1], labels[:, 0] + 1)
    assert theta.min() < -0.9 * math.pi and theta.max() > 0.9 * math.pi
    _, labels = _only("aniso")(_images(n=400, c=1, h=8, w=8), generator=_gen())
    along_axes = labels[:, 1] == 0  # r = 0 with probability 1 − aniso_rotate_prob
    assert 0.4 < along_axes.float().mean() < 0.6 and labels[:, 0].ne(0).all()


def test_every_random_number_comes_from_the_generator():
    x = _images(n=64)
    aug = EDMAugment(p=0.5, rotate_int=1, translate_int=1)
    assert aug.label_dim == 13
    state = torch.get_rng_state()
    a = aug(x, generator=_gen(7))
    b = aug(x, generator=_gen(7))
    assert torch.equal(torch.get_rng_state(), state)  # the global generator was not used
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    c = aug(x, generator=_gen(8))
    assert not torch.equal(a[1], c[1])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_shapes_and_dtypes(dtype):
    x = _images(n=8, c=2, h=12, w=10, dtype=dtype)
    y, labels = EDMAugment(p=1)(x, generator=_gen())
    assert y.shape == x.shape and y.dtype == dtype and torch.isfinite(y.float()).all()
    assert labels.shape == (8, 9) and labels.dtype == torch.float32
    none, empty = EDMAugment(**OFF)(x)
    assert torch.equal(none, x) and empty.shape == (8, 0)


def test_gradients_flow_through_the_augmentation():
    x = _images(n=8).requires_grad_(True)
    y, _ = EDMAugment(p=1)(x, generator=_gen())
    y.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"p": 1.5}, r"p must lie in \[0, 1\], got 1.5"),
        ({"xflip": -1}, "xflip must be"),
        ({"scale_std": float("nan")}, "scale_std must be"),
        ({"aniso_rotate_prob": 2}, r"aniso_rotate_prob must lie in \[0, 1\]"),
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EDMAugment(**kwargs)


def test_bad_inputs():
    aug = EDMAugment(p=1)
    cases = [
        (torch.zeros(3, 8, 8), "expects images \\(N, C, H, W\\), got \\(3, 8, 8\\)"),
        (torch.zeros(2, 3, 8, 8, dtype=torch.uint8), "expects float images, got torch.uint8"),
        ([1, 2], "expects images \\(N, C, H, W\\), got list"),
    ]
    for images, match in cases:
        with pytest.raises(ValueError, match=match) as info:
            aug(images)
        assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match=r"generator must be a torch\.Generator, got int"):
        aug(_images(), generator=0)
    with pytest.raises(ValueError, match="rotate_int needs square images, got 8x6"):
        EDMAugment(p=1, rotate_int=1)(_images(h=8, w=6))


# --------------------------------------------------------------------------------------------
# AugmentConditioned


def _net(name, **config):
    torch.manual_seed(0)
    return build_network(name, config, who="test", classes=CLASSES).eval()


def _inputs(name):
    g = torch.Generator().manual_seed(1)
    if name == "UNet2DModel":
        return (torch.randn(2, 3, 16, 16, generator=g), T), {}
    if name == "UNet2DConditionModel":
        ctx = torch.randn(2, 1, 32, generator=g)
        return (torch.randn(2, 4, 8, 8, generator=g), T), {"encoder_hidden_states": ctx}
    return (torch.randn(2, 3, 8, 8, generator=g), T), {"class_labels": torch.tensor([10, 2])}


LABELS = torch.randn(2, 9, generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("at", ["input", "output"])
@pytest.mark.parametrize(
    ("name", "injections"),
    [("UNet2DModel", 1), ("UNet2DConditionModel", 1), ("DiTTransformer2DModel", 3)],
)
def test_zero_labels_are_exactly_the_plain_network(name, injections, at):
    net = _net(name)
    wrapped = AugmentConditioned(net, at=at)
    args, kwargs = _inputs(name)
    with torch.no_grad():
        base = net(*args, **kwargs).sample
        assert torch.equal(wrapped(*args, **kwargs).sample, base)  # aug_labels=None
        assert wrapped.injections == 0
        zero = wrapped(*args, aug_labels=torch.zeros(2, 9), **kwargs).sample
        assert (zero - base).abs().max().item() == 0.0
        assert wrapped.injections == injections  # DiT: 2 blocks and the output layer
        moved = wrapped(*args, aug_labels=LABELS, **kwargs).sample
    assert (moved - base).abs().max() > 1e-4
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())
    assert set(wrapped.state_dict()) == {"map_augment.weight"} | {
        f"network.{k}" for k in net.state_dict()
    }


@pytest.mark.parametrize("at", ["input", "output"])
def test_the_embedding_every_unet_block_reads_moves_by_map_augment(at):
    net = _net("UNet2DModel")
    wrapped = AugmentConditioned(net, at=at)
    seen = []
    handle = net.time_embedding.register_forward_hook(lambda m, a, out: seen.append(out))
    args, _ = _inputs("UNet2DModel")
    try:
        with torch.no_grad():
            wrapped(*args, aug_labels=LABELS)
            net(*args)
            if at == "output":
                want = seen[1] + wrapped.map_augment(LABELS)
            else:  # through the embedding MLP, as EDM's map_layer0 / map_layer1
                want = net.time_embedding(net.time_proj(T) + wrapped.map_augment(LABELS))
    finally:
        handle.remove()
    torch.testing.assert_close(seen[0], want)
    width = net.time_embedding.linear_1.in_features if at == "input" else 128
    assert wrapped.map_augment.weight.shape == (width, 9)


@pytest.mark.parametrize("at", ["input", "output"])
def test_dit_output_layer_gets_the_label_too(at):
    net = _net("DiTTransformer2DModel", num_layers=3)
    wrapped = AugmentConditioned(net, at=at)
    seen: dict[str, list] = {"block0": [], "final": []}
    handles = [
        net.transformer_blocks[0].norm1.linear.register_forward_pre_hook(
            lambda m, a: seen["block0"].append(a[0])
        ),
        net.proj_out_1.register_forward_pre_hook(lambda m, a: seen["final"].append(a[0])),
    ]
    args, kwargs = _inputs("DiTTransformer2DModel")
    try:
        with torch.no_grad():
            wrapped(*args, aug_labels=LABELS, **kwargs)
            net(*args, **kwargs)
    finally:
        for handle in handles:
            handle.remove()
    assert wrapped.injections == 4  # 3 blocks, then block 0's embedding for the output layer
    for where in ("block0", "final"):
        assert (seen[where][0] - seen[where][1]).abs().max() > 1e-4


def test_gradient_reaches_map_augment_only_through_non_zero_labels():
    net = _net("UNet2DModel")
    wrapped = AugmentConditioned(net)
    args, _ = _inputs("UNet2DModel")
    wrapped(*args, aug_labels=torch.zeros(2, 9)).sample.square().mean().backward()
    assert wrapped.map_augment.weight.grad.abs().max() == 0  # a zero label adds nothing
    wrapped.zero_grad(set_to_none=True)
    wrapped(*args, aug_labels=LABELS).sample.square().mean().backward()
    assert wrapped.map_augment.weight.grad.abs().min() > 0
    assert net.time_embedding.linear_1.weight.grad.abs().sum() > 0


def _kick(module, seed=2):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)


@pytest.mark.parametrize("at", ["input", "output"])
@pytest.mark.parametrize(
    ("name", "config"), [("UNet2DModel", {}), ("DiTTransformer2DModel", {"num_layers": 4})]
)
def test_composes_with_self_conditioning_in_either_order(name, config, at):
    net = _net(name, **config)
    args, kwargs = _inputs(name)
    inner_aug = AugmentConditioned(net, at=at)
    outer_self = SelfConditioned(inner_aug, gate="learned")
    inner_self = SelfConditioned(net, gate="learned")
    outer_aug = AugmentConditioned(inner_self, at=at)
    with torch.no_grad():
        base = net(*args, **kwargs).sample
        for model in (outer_self, outer_aug):  # both at init, zero labels: the plain network
            out = model(*args, aug_labels=torch.zeros(2, 9), **kwargs).sample
            assert (out - base).abs().max().item() == 0.0
    _kick(outer_self.mlp)
    _kick(outer_self.gate, seed=4)
    inner_self.load_state_dict(outer_self.state_dict(), strict=False)
    outer_aug.map_augment.load_state_dict(inner_aug.map_augment.state_dict())
    with torch.no_grad():
        a = outer_self(*args, aug_labels=LABELS, **kwargs).sample
        b = outer_aug(*args, aug_labels=LABELS, **kwargs).sample
        self_only = inner_self(*args, **kwargs).sample
        aug_only = inner_aug(*args, aug_labels=LABELS, **kwargs).sample
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    for other in (self_only, aug_only, base):
        assert (a - other).abs().max() > 1e-4
    assert outer_self.config is net.config and outer_aug.config is net.config
    assert unwrap_network(outer_self) is net and unwrap_network(outer_aug) is net
    linear = torch.nn.Linear(2, 2)
    assert unwrap_network(linear) is linear
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())


def test_bad_labels_and_options():
    net = _net("UNet2DModel")
    wrapped = AugmentConditioned(net)
    args, _ = _inputs("UNet2DModel")
    cases = [
        (torch.zeros(2, 7), "aug_labels has 7 columns but augment_dim is 9"),
        (torch.zeros(3, 9), "aug_labels has 3 rows for a batch of 2 images"),
        (torch.zeros(9), "aug_labels must be a tensor \\(N, 9\\), got \\(9,\\)"),
        ([0.0] * 9, "aug_labels must be a tensor \\(N, 9\\), got list"),
    ]
    for labels, match in cases:
        with pytest.raises(ValueError, match=match):
            wrapped(*args, aug_labels=labels)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())
    with pytest.raises(ValueError, match="unknown at 'middle'"):
        AugmentConditioned(net, at="middle")
    with pytest.raises(ValueError, match="augment_dim must be a positive int"):
        AugmentConditioned(net, augment_dim=0)
    with pytest.raises(ValueError, match="wraps a diffusers UNet2DModel"):
        AugmentConditioned(torch.nn.Linear(2, 2))
    assert AugmentConditioned(net, augment_dim=13).map_augment.in_features == 13


def test_a_training_step_with_the_edm_loss():
    """EDMAugment → AugmentConditioned inside EDMLoss: with p = 0 the loss is the plain
    network's, with augmentation the loss's gradient reaches map_augment."""
    net = _net("UNet2DModel")
    wrapped = AugmentConditioned(net)
    x = _images(n=4)
    loss = EDMLoss()
    for p in (0.0, 1.0):
        aug = EDMAugment(p=p)
        x0, labels = aug(x, generator=_gen(5))
        value = loss(network_call(wrapped, aug_labels=labels), x0, generator=_gen(6))
        if p == 0:
            plain = loss(network_call(net), x, generator=_gen(6))
            assert value.item() == plain.item()
        else:
            value.backward()
            assert wrapped.map_augment.weight.grad.abs().sum() > 0


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_augment_and_conditioning():
    x = _images(n=64).cuda()
    aug = EDMAugment(p=0.5, rotate_int=1, translate_int=1)
    g = torch.Generator(device="cuda")
    a = aug(x, generator=g.manual_seed(3))
    b = aug(x, generator=g.manual_seed(3))
    assert a[0].device.type == "cuda" and a[1].device.type == "cuda"
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and a[1].shape == (64, 13)
    y, labels = EDMAugment(p=0)(x, generator=g)
    assert torch.equal(y, x) and not labels.any()
    with pytest.raises(ValueError, match="the generator is on cpu but the images are on cuda"):
        aug(x, generator=_gen())
    net = _net("DiTTransformer2DModel").cuda()
    wrapped = AugmentConditioned(net).cuda()
    args, kwargs = _inputs("DiTTransformer2DModel")
    args = tuple(t.cuda() for t in args)
    kwargs = {k: v.cuda() for k, v in kwargs.items()}
    with torch.no_grad():
        base = net(*args, **kwargs).sample
        zero = wrapped(*args, aug_labels=torch.zeros(2, 9, device="cuda"), **kwargs).sample
        moved = wrapped(*args, aug_labels=LABELS.cuda(), **kwargs).sample
    assert torch.equal(zero, base) and (moved - base).abs().max() > 1e-4
