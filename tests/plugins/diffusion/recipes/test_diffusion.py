"""The ``diffusion`` recipe: its EMA, DDAE features, switches, REPA, MoCo, pretrained
networks and one-line errors. The protocol itself (steps, bit-identical resume, state,
encode) is checked for every registered recipe in tests/core/recipes."""

from __future__ import annotations

import copy

import pytest
import torch

from manyview.config import ConfigError
from manyview.testing.recipes import example_config

BASE = [
    "recipe_options.self_condition=false",
    "recipe_options.moco=false",
]


def build(overrides=(), seed=0):
    import manyview
    from manyview.runs import make_dataset, seed_all

    config = example_config("diffusion", [*BASE, *overrides])
    seed_all(seed)
    dataset = make_dataset(config["data"])
    factory = manyview.entry("recipe", "diffusion").load()
    return factory(copy.deepcopy(config), dataset), dataset


def batch(dataset, n=8):
    return dataset.get_batch(list(range(n)))


def one_step(recipe, dataset, optimizer, seed=0):
    out = recipe.step(batch(dataset), torch.Generator().manual_seed(seed))
    optimizer.zero_grad()
    out.loss.backward()
    optimizer.step()
    return out


def test_the_ema_is_the_teachers_and_follows_its_closed_form():
    recipe, dataset = build()
    assert recipe.model.ema is recipe.teacher.module
    m = recipe.teacher.momentum
    name = "network.conv_in.weight"
    online = dict(recipe.model.named_parameters())[name]
    thetas = [online.detach().clone()]
    opt = torch.optim.SGD(recipe.trainable(), lr=0.1)
    for k in range(3):
        one_step(recipe, dataset, opt, seed=k)
        recipe.after_step(k)
        thetas.append(online.detach().clone())
    want = m**3 * thetas[0] + sum((1 - m) * m ** (3 - i) * thetas[i] for i in range(1, 4))
    got = dict(recipe.model.ema.named_parameters())[name]
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)
    assert not any(p.requires_grad for p in recipe.model.ema.parameters())
    assert all(p.requires_grad for p in recipe.trainable())
    assert not {id(p) for p in recipe.trainable()} & {id(p) for p in recipe.model.ema.parameters()}


def test_features_are_deterministic_and_read_the_named_block():
    recipe, dataset = build()
    x = batch(dataset, 4)["image"]
    a, b = recipe.encode("image", x), recipe.encode("image", x)
    assert torch.equal(a, b) and a.shape == (4, 32)
    up = recipe.features(x, block="up_blocks.1", level=0)
    assert up.shape == (4, 16)
    assert not torch.equal(recipe.features(x, level=500), a)


def test_baseline_resets_the_ema_too(tmp_path):
    from manyview.runs import load_run
    from manyview.testing.recipes import _trainer

    config = example_config("diffusion", [*BASE, "run.steps=3", "run.checkpoint_every=3"])
    _trainer(config, tmp_path / "run").fit()
    run = load_run(tmp_path / "run")
    x = run.dataset("test").get_batch(list(range(4)))["image"]
    fresh, _ = build(["run.steps=3"])
    trained, base = run.encode("image", x), run.baseline().encode("image", x)
    torch.testing.assert_close(base, fresh.encode("image", x))
    assert not torch.allclose(trained, base)


@pytest.mark.parametrize(
    "overrides",
    [
        ["recipe_options.objective='edm'"],
        ["recipe_options.objective='flow_matching'"],
        ["recipe_options.class_conditional=true"],
        [
            "recipe_options.network='DiTTransformer2DModel'",
            "recipe_options.network_config={num_layers=2, patch_size=2}",
            "recipe_options.class_conditional=true",
            "recipe_options.self_condition=true",
        ],
    ],
    ids=["edm", "flow", "class-conditional-unet", "dit"],
)
def test_objectives_and_networks_train(overrides):
    recipe, dataset = build(overrides)
    opt = torch.optim.AdamW(recipe.trainable(), lr=1e-3)
    out = one_step(recipe, dataset, opt)
    assert torch.isfinite(out.loss) and set(out.components) == {recipe.objective_name}
    assert recipe.encode("image", batch(dataset, 2)["image"]).dim() == 2


def test_self_conditioning_starts_as_the_plain_network():
    plain, dataset = build()
    wrapped, _ = build(["recipe_options.self_condition=true"])
    x = batch(dataset)
    g = torch.Generator().manual_seed(3)
    assert (
        plain.step(x, g).loss.item()
        == wrapped.step(x, torch.Generator().manual_seed(3)).loss.item()
    )


ALIGN = [
    "recipe_options.align=true",
    "recipe_options.align_options={teacher={name='frozen', options={encoder='ddae_unet', "
    "encoder_kwargs={config={in_channels=1, out_channels=1, sample_size=8, "
    "block_out_channels=[16, 32], norm_num_groups=8}}}}}",
]


def test_repa_adds_an_alignment_term_without_gradient_into_its_target():
    recipe, dataset = build(ALIGN)
    out = recipe.step(batch(dataset), torch.Generator().manual_seed(0))
    assert set(out.components) == {"ddpm", "align"}
    assert -1.0 <= out.components["align"] <= 1.0
    out.loss.backward()
    assert recipe.model.heads["align_proj"][0].weight.grad is not None
    assert recipe.model.network.conv_in.weight.grad is not None
    assert all(p.grad is None for p in recipe.align_teacher.parameters())
    assert not any(p.requires_grad for p in recipe.align_teacher.parameters())
    total = out.components["ddpm"] + 0.5 * out.components["align"]
    assert out.loss.item() == pytest.approx(float(total), rel=1e-6)


def test_repa_loss_is_minus_one_when_the_projection_is_proportional_to_the_target():
    recipe, _ = build(ALIGN)
    y = torch.randn(3, 5)

    class Proportional(torch.nn.Module):
        def forward(self, h):
            return 2.5 * y

    recipe.model.heads["align_proj"] = Proportional()
    h = torch.randn(3, 7, 4, 4)
    assert recipe._align_loss(h, y).item() == pytest.approx(-1.0)
    tokens = torch.randn(3, 4, 5)
    recipe.model.heads["align_proj"] = torch.nn.Identity()
    h = tokens.transpose(1, 2).reshape(3, 5, 2, 2)  # a 2x2 map of the same 4 tokens
    assert recipe._align_loss(h, tokens).item() == pytest.approx(-1.0)


def test_a_local_pretrained_network_is_loaded(tmp_path):
    from manyview_diffusion import build_network

    net = build_network(
        "UNet2DModel",
        {"in_channels": 1, "out_channels": 1, "sample_size": 8, "block_out_channels": (16, 32)},
        who="test",
        classes=("UNet2DModel",),
    )
    net.save_pretrained(tmp_path / "unet")
    recipe, _ = build(
        [f"recipe_options.pretrained='{tmp_path / 'unet'}'", "recipe_options.network_config={}"]
    )
    for (name, a), b in zip(
        net.state_dict().items(), recipe.model.base.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (["recipe_options.feature_block='up_blocks.7'"], "valid blocks: conv_in"),
        (["recipe_options.feature_level=1000"], r"outside the schedule's timesteps \[0, 999\]"),
        (["recipe_options.objective='ddim'"], "objective"),
        (["recipe_options.objective_options={beta_schedul='linear'}"], "beta_schedul"),
        (["recipe_options.network_config={sample_size=16}"], "the dataset gives 1x8x8"),
        (
            ["recipe_options.pretrained='/nonexistent/unet'", "recipe_options.network_config={}"],
            "does not exist",
        ),
        (
            ["recipe_options.moco_options={tau=0.2, temprature=1}", "recipe_options.moco=true"],
            "temprature",
        ),
        (["recipe_options.align=true"], "give teacher"),
        (["recipe_options.self_condition='yes'"], "true or false"),
        (
            [
                "teacher.name='frozen'",
                "teacher.options={encoder='mlp', encoder_kwargs={input_dim=4}}",
            ],
            "averaging teacher",
        ),
    ],
)
def test_bad_configurations_are_one_line(overrides, match):
    with pytest.raises(ConfigError, match=match) as info:
        build(overrides)
    assert "\n" not in str(info.value)


def test_a_folder_that_is_not_a_diffusers_model_is_one_line(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(ConfigError, match="not a diffusers model folder") as info:
        build([f"recipe_options.pretrained='{tmp_path}'", "recipe_options.network_config={}"])
    assert "\n" not in str(info.value)


def test_losses_tables_are_refused():
    import tomllib

    import manyview
    from manyview.config import validate
    from manyview.runs import make_dataset

    raw = tomllib.loads(manyview.entry("recipe", "diffusion").load().example_config)
    raw["run"]["recipe"] = "diffusion"
    raw["losses"] = [{"name": "infonce"}]
    config = validate(raw)
    with pytest.raises(ConfigError, match=r"remove the \[\[losses\]\]"):
        manyview.entry("recipe", "diffusion").load()(config, make_dataset(config["data"]))


@pytest.mark.parametrize(
    ("images", "match"),
    [
        (torch.rand(2, 1, 16, 16), "takes 1x8x8 images, got 1x16x16"),
        (torch.rand(2, 3, 8, 8), "takes 1x8x8 images, got 3x8x8"),
        (torch.rand(1, 8, 8), r"expects images \(N, C, H, W\)"),
        (torch.zeros(2, 1, 8, 8, dtype=torch.long), "float or uint8"),
    ],
)
def test_bad_images_are_one_line(images, match):
    recipe, _ = build()
    with pytest.raises(ValueError, match=match) as info:
        recipe.encode("image", images)
    assert "\n" not in str(info.value)


def test_moco_term_queries_online_against_ema_keys():
    recipe, dataset = build(["recipe_options.self_condition=true", "recipe_options.moco=true"])
    assert recipe.moco["feature"] == "u" and recipe.moco["tau"] == 0.2
    out = recipe.step(batch(dataset), torch.Generator().manual_seed(0))
    assert set(out.components) == {"ddpm", "moco"}
    assert out.loss.item() == pytest.approx(
        float(out.components["ddpm"] + out.components["moco"]), rel=1e-6
    )
    # at initialisation u = 0: every query is the same, so the loss is log(N) exactly
    assert float(out.components["moco"]) == pytest.approx(
        torch.log(torch.tensor(8.0)).item(), rel=1e-4
    )
    out.loss.backward()
    assert recipe.model.heads["moco_pred"][0].weight.grad is not None
    assert recipe.model.network.mlp[-1].weight.grad.abs().sum() > 0  # through u
    assert all(p.grad is None for p in recipe.model.ema.parameters())


def test_moco_on_a_block_reaches_the_encoder():
    recipe, dataset = build(
        [
            "recipe_options.moco=true",
            "recipe_options.moco_options={feature='mid_block', dim=8, hidden=16}",
        ]
    )
    out = recipe.step(batch(dataset), torch.Generator().manual_seed(0))
    out.loss.backward()
    assert recipe.model.network.down_blocks[0].resnets[0].conv1.weight.grad.abs().sum() > 0


def test_edm_augmentation_labels_enter_the_time_embedding():
    recipe, dataset = build(
        ["recipe_options.augment=true", "recipe_options.augment_options={p=1.0}"]
    )
    from manyview_diffusion import AugmentConditioned

    assert isinstance(recipe.model.network, AugmentConditioned)
    out = recipe.step(batch(dataset), torch.Generator().manual_seed(0))
    out.loss.backward()
    assert torch.isfinite(out.loss)
    linear = [p for n, p in recipe.model.network.named_parameters() if "network." not in n]
    assert linear and all(p.grad is not None and p.grad.abs().sum() > 0 for p in linear)
