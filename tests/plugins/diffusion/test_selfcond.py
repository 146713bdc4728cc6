"""DDAE++ self-conditioning: exactly the baseline at zero init (UNet2DModel,
UNet2DConditionModel, DiT), only the blocks after the source change, gradients reach the
encoder after one step unless stopped, the two injection traps, and the MLP's size."""

from __future__ import annotations

import copy

import pytest
import torch

from manyview_diffusion import FeatureTap, SelfConditioned, build_network, mlp_overhead

CLASSES = ("UNet2DModel", "UNet2DConditionModel", "DiTTransformer2DModel")
T = torch.tensor([3, 500])


def _net(name, **config):
    torch.manual_seed(0)
    return build_network(name, config, who="test", classes=CLASSES).eval()  # no label dropout


def _inputs(name):
    g = torch.Generator().manual_seed(1)
    if name == "UNet2DModel":
        return (torch.randn(2, 3, 16, 16, generator=g), T), {}
    if name == "UNet2DConditionModel":
        ctx = torch.randn(2, 1, 32, generator=g)
        return (torch.randn(2, 4, 8, 8, generator=g), T), {"encoder_hidden_states": ctx}
    return (torch.randn(2, 3, 8, 8, generator=g), T), {"class_labels": torch.tensor([10, 2])}


def _kick(wrapped, seed=2):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in wrapped.mlp.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)


@pytest.mark.parametrize(
    ("name", "config", "injections"),
    [
        ("UNet2DModel", {}, 2),
        ("UNet2DConditionModel", {}, 2),
        ("DiTTransformer2DModel", {"num_layers": 4}, 3),  # blocks 2, 3 and the output layer
    ],
)
@pytest.mark.parametrize("gate", ["none", "learned"])
def test_zero_init_is_exactly_the_baseline(name, config, injections, gate):
    net = _net(name, **config)
    wrapped = SelfConditioned(net, gate=gate)
    args, kwargs = _inputs(name)
    with torch.no_grad():
        base = net(*args, **kwargs).sample
        out = wrapped(*args, **kwargs).sample
    assert (out - base).abs().max().item() == 0.0
    assert wrapped.injections == injections
    _kick(wrapped)
    with torch.no_grad():
        assert (wrapped(*args, **kwargs).sample - base).abs().max() > 1e-4
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())


def test_unet2dmodel_gets_u_through_the_positional_time_embedding():
    net = _net("UNet2DModel")
    wrapped = SelfConditioned(net)
    _kick(wrapped)
    calls, projected = [], []
    block = net.up_blocks[0]
    handles = [
        block.register_forward_pre_hook(
            lambda m, a, kw: calls.append((len(a), set(kw))), with_kwargs=True
        ),
        block.resnets[0].time_emb_proj.register_forward_pre_hook(
            lambda m, a: projected.append(a[0])
        ),
    ]
    args, _ = _inputs("UNet2DModel")
    try:
        with torch.no_grad():
            base_temb = net.time_embedding(net.time_proj(T))
            wrapped(*args)
            net(*args)
    finally:
        for handle in handles:
            handle.remove()
    # UNet2DModel calls the up block as (sample, res_samples, emb): temb is positional
    assert calls[0] == (3, set())
    silu = torch.nn.functional.silu
    torch.testing.assert_close(projected[1], silu(base_temb))  # the plain network
    assert (projected[0] - silu(base_temb)).abs().max() > 1e-4  # e_t + u reached the resnet


def test_only_the_blocks_after_the_source_change():
    net = _net("UNet2DModel")
    wrapped = SelfConditioned(net)
    _kick(wrapped)
    args, _ = _inputs("UNet2DModel")
    blocks = ["down_blocks.1", "mid_block", "up_blocks.0"]
    with torch.no_grad():
        base = FeatureTap(net, blocks)(lambda: net(*args))
        new = FeatureTap(net, blocks)(lambda: wrapped(*args))
    assert torch.equal(base["down_blocks.1"], new["down_blocks.1"])
    assert torch.equal(base["mid_block"], new["mid_block"])
    assert (base["up_blocks.0"] - new["up_blocks.0"]).abs().max() > 1e-4


@pytest.mark.parametrize(
    ("inject", "changed"),
    [("decoder", ["mid_block", "up_blocks.0"]), ("all_after", ["down_blocks.1", "mid_block"])],
)
def test_a_down_block_source_conditions_the_decoder_only_by_default(inject, changed):
    net = _net("UNet2DModel")
    wrapped = SelfConditioned(net, source="down_blocks.0", inject=inject)
    _kick(wrapped)
    args, _ = _inputs("UNet2DModel")
    blocks = ["down_blocks.1", "mid_block", "up_blocks.0"]
    with torch.no_grad():
        base = FeatureTap(net, blocks)(lambda: net(*args))
        new = FeatureTap(net, blocks)(lambda: wrapped(*args))
    for block in blocks:
        differs = bool((base[block] - new[block]).abs().max() > 1e-6)
        assert differs == (block in changed or block == "up_blocks.0"), (inject, block)


def test_dit_output_layer_reuses_block_0s_embedding_only_on_its_second_call():
    net = _net("DiTTransformer2DModel", num_layers=4)
    wrapped = SelfConditioned(net, source="transformer_blocks.1")
    _kick(wrapped)
    seen: dict[str, list] = {"emb0": [], "block0": [], "final": []}
    blocks = net.transformer_blocks
    handles = [
        blocks[0].norm1.emb.register_forward_hook(lambda m, a, out: seen["emb0"].append(out)),
        blocks[0].norm1.linear.register_forward_pre_hook(lambda m, a: seen["block0"].append(a[0])),
        net.proj_out_1.register_forward_pre_hook(lambda m, a: seen["final"].append(a[0])),
    ]
    args, kwargs = _inputs("DiTTransformer2DModel")
    try:
        with torch.no_grad():
            wrapped(*args, **kwargs)
            net(*args, **kwargs)
    finally:
        for handle in handles:
            handle.remove()
    assert len(seen["emb0"]) == 4  # 2 calls per forward: block 0, then the output layer
    assert torch.equal(seen["block0"][0], seen["block0"][1])  # block 0 is before the source
    assert (seen["final"][0] - seen["final"][1]).abs().max() > 1e-4  # the output layer is after


@pytest.mark.parametrize("name", ["UNet2DModel", "DiTTransformer2DModel"])
def test_gradients_reach_the_encoder_after_one_step_unless_stopped(name):
    config = {"num_layers": 4} if name == "DiTTransformer2DModel" else {}
    args, kwargs = _inputs(name)
    net = _net(name, **config)
    wrapped = SelfConditioned(net)
    wrapped(*args, **kwargs).sample.square().mean().backward()
    assert wrapped.mlp[-1].weight.grad.abs().sum() > 0  # the zero layer learns first
    assert wrapped.mlp[0].weight.grad.abs().sum() == 0  # nothing flows past it yet
    torch.optim.SGD(wrapped.parameters(), lr=1.0).step()
    stopped = copy.deepcopy(wrapped)
    stopped.stop_grad = True
    enc = (
        (lambda m: m.network.down_blocks[0].resnets[0].conv1.weight)
        if name == "UNet2DModel"
        else (lambda m: m.network.transformer_blocks[0].attn1.to_q.weight)
    )
    grads = []
    for model in (wrapped, stopped):
        model.zero_grad(set_to_none=True)
        model(*args, **kwargs).sample.square().mean().backward()
        grads.append(enc(model).grad.clone())
        assert model.mlp[0].weight.grad.abs().sum() > 0
    assert (grads[0] - grads[1]).abs().max() > 1e-7  # the path through u exists and is cut


def test_parameter_overhead_tiny_and_dit_b2_on_meta():
    added, base, ratio = mlp_overhead(SelfConditioned(_net("UNet2DModel")))
    assert (added, base) == (24_832, 702_499) and ratio < 0.05
    with torch.device("meta"):
        dit_b2 = build_network(
            "DiTTransformer2DModel",
            {
                "num_attention_heads": 12,
                "attention_head_dim": 64,
                "in_channels": 4,
                "out_channels": 8,
                "num_layers": 12,
                "sample_size": 32,
                "patch_size": 2,
                "num_embeds_ada_norm": 1000,
            },
            who="test",
            classes=CLASSES,
        )
        added, base, ratio = mlp_overhead(SelfConditioned(dit_b2))
    print(f"DiT-B/2 self-conditioning MLP: {added:,} parameters = {ratio:.2%} of {base:,}")
    assert added == 2 * (768 * 768 + 768) and ratio < 0.01


def test_hooks_are_removed_when_the_forward_raises():
    net = _net("UNet2DModel")
    wrapped = SelfConditioned(net)
    with pytest.raises(RuntimeError):
        wrapped(torch.randn(2, 5, 16, 16), T)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"source": "up_blocks.1"}, "no block runs after source 'up_blocks.1'"),
        (
            {"source": "mid_block.resnets.0"},
            "source must be one of the top-level blocks down_blocks.0",
        ),
        ({"source": "middle"}, "block 'middle' is not a module of UNet2DModel"),
        ({"gate": "sigmoid"}, "unknown gate 'sigmoid'"),
        ({"hidden": 0}, "hidden must be a positive int"),
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SelfConditioned(_net("UNet2DModel"), **kwargs)
    with pytest.raises(ValueError, match="wraps a diffusers UNet2DModel"):
        SelfConditioned(torch.nn.Linear(2, 2))
