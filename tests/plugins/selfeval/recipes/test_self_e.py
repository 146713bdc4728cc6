"""The ``self_e`` recipe: its EMA, the passes a step makes in each mode, the aux term's
start, prompt dropout, sampling and one-line errors. The protocol itself (steps,
bit-identical resume, state round trip, encode) is checked for every registered recipe in
tests/core/recipes."""

from __future__ import annotations

import copy

import pytest
import torch

from manyview.config import ConfigError
from manyview.testing.recipes import example_config


def build(overrides=(), seed=0):
    import manyview
    from manyview.runs import make_dataset, seed_all

    config = example_config("self_e", list(overrides))
    seed_all(seed)
    dataset = make_dataset(config["data"])
    factory = manyview.entry("recipe", "self_e").load()
    return factory(copy.deepcopy(config), dataset), dataset


def batch(dataset, n=8):
    return dataset.get_batch(list(range(n)))


def one_step(recipe, dataset, optimizer, k):
    out = recipe.step(batch(dataset), torch.Generator().manual_seed(k))
    optimizer.zero_grad()
    out.loss.backward()
    optimizer.step()
    recipe.after_step(k)
    return out


def count_passes(module):
    calls = []
    handle = module.register_forward_hook(lambda *_: calls.append(1))
    return calls, handle


def test_the_ema_is_the_teachers_and_follows_its_closed_form():
    recipe, dataset = build()
    assert recipe.model.ema is recipe.teacher.module
    m = recipe.teacher.momentum
    names = ["denoiser.denoiser.out.weight", "text.tower.token_embedding.weight"]
    params = dict(recipe.model.named_parameters())
    thetas = {n: [params[n].detach().clone()] for n in names}
    opt = torch.optim.SGD(recipe.trainable(), lr=0.1)
    for k in range(3):
        one_step(recipe, dataset, opt, k)
        for n in names:
            thetas[n].append(params[n].detach().clone())
    ema = dict(recipe.model.ema.named_parameters())
    for n in names:
        th = thetas[n]
        want = m**3 * th[0] + sum((1 - m) * m ** (3 - i) * th[i] for i in range(1, 4))
        torch.testing.assert_close(ema[n], want, rtol=1e-6, atol=1e-7)
        assert not torch.equal(th[0], th[3])  # the text encoder is trained here
    assert not any(p.requires_grad for p in recipe.model.ema.parameters())
    assert not {id(p) for p in recipe.trainable()} & {id(p) for p in recipe.model.ema.parameters()}
    assert int(recipe.steps_done) == 3 and recipe.progress == 3 / 4


def test_a_frozen_text_encoder_is_neither_trained_nor_averaged():
    recipe, dataset = build(["recipe_options.train_text_encoder=false"])
    text = recipe.model.text
    assert recipe.model.ema.text is None
    assert not any(p.requires_grad for p in text.parameters())
    assert {id(p) for p in text.parameters()}.isdisjoint(id(p) for p in recipe.trainable())
    before = copy.deepcopy(text.state_dict())
    one_step(recipe, dataset, torch.optim.SGD(recipe.trainable(), lr=0.1), 0)
    for key, value in text.state_dict().items():
        assert torch.equal(value, before[key])
    assert recipe.model.averaged().text is text  # the EMA model reads the frozen encoder


@pytest.mark.parametrize(("mode", "passes"), [("self_e", 3), ("flow_matching", 1)])
def test_network_passes_per_step(mode, passes):
    sets = [
        f"recipe_options.mode={mode!r}",
        "recipe_options.loss_options={s_equal_prob=0.0, anneal_fraction=0.0}",
    ]
    if mode == "flow_matching":
        sets.append("recipe_options.aux_start=false")
    recipe, dataset = build(sets)
    online, handle = count_passes(recipe.model.denoiser)
    ema, ema_handle = count_passes(recipe.model.ema.denoiser)
    recipe.step(batch(dataset), torch.Generator().manual_seed(0))
    handle.remove(), ema_handle.remove()
    assert len(online) + len(ema) == passes
    assert len(ema) == (1 if mode == "self_e" else 0)  # the conditional evaluator pass


def test_the_aux_term_turns_on_after_aux_start():
    recipe, dataset = build(
        ["recipe_options.loss_options={s_equal_prob=0.0, anneal_fraction=0.0}"]
    )  # aux_start 0.5
    calls, handle = count_passes(recipe.model.denoiser)
    opt = torch.optim.SGD(recipe.trainable(), lr=0.01)
    seen = []
    for k in range(4):
        calls.clear()
        out = one_step(recipe, dataset, opt, k)
        seen.append(("aux_fake" in out.components, len(calls)))
    handle.remove()
    # steps 0, 1 at progress 0, 0.25: 2 online passes; steps 2, 3 at 0.5, 0.75: 4 (fake too)
    assert seen == [(False, 2), (False, 2), (True, 4), (True, 4)]


def test_the_anneal_reads_the_recipes_own_step_count():
    recipe, dataset = build()
    seen = []
    recipe.loss.register_forward_pre_hook(
        lambda mod, args, kwargs: seen.append(kwargs["progress"]), with_kwargs=True
    )
    opt = torch.optim.SGD(recipe.trainable(), lr=0.01)
    for k in range(3):
        one_step(recipe, dataset, opt, k)
    assert seen == [0.0, 0.25, 0.5]
    assert "steps_done" in recipe.state_dict()


def test_prompt_dropout_rate():
    recipe, _ = build(["recipe_options.prompt_dropout=0.3"])
    g = torch.Generator().manual_seed(0)
    out = recipe.drop_prompts(["seven"] * 20000, g)
    rate = out.count("") / len(out)
    assert abs(rate - 0.3) < 0.015 and set(out) == {"", "seven"}
    none, _ = build(["recipe_options.prompt_dropout=0.0"])
    assert none.drop_prompts(["a", "b"], g) == ["a", "b"]


def test_sample_any_steps_and_prompts():
    recipe, _ = build()
    recipe.eval()
    for k in (1, 3):
        x = recipe.sample(4, steps=k, generator=torch.Generator().manual_seed(0))
        assert x.shape == (4, 1, 8, 8) and float(x.min()) >= 0 and float(x.max()) <= 1
    a = recipe.sample(2, prompts=["seven", "7"], generator=torch.Generator().manual_seed(1))
    b = recipe.sample(2, prompts=["seven", "7"], generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    by_label = recipe.sample(
        2, labels=torch.tensor([7, 7]), generator=torch.Generator().manual_seed(1)
    )
    by_prompt = recipe.sample(2, prompts=["seven"] * 2, generator=torch.Generator().manual_seed(1))
    assert recipe.class_prompts[7] == "seven" and torch.equal(by_label, by_prompt)
    z = recipe.encode("text", ["seven", "7"])
    assert z.shape == (2, recipe.model.text.output_dim)
    with pytest.raises(ValueError, match="tokens"):
        recipe.sample(1, prompts=["a b c d e f g h i j"])
    with pytest.raises(ValueError, match="scale"):
        recipe.sample(1, scale=0.5)
    with pytest.raises(ValueError, match="labels"):
        recipe.sample(2, labels=torch.tensor([10, 0]))


def test_the_flow_matching_mode_samples_with_s_equal_t_by_default():
    fm, _ = build(["recipe_options.mode='flow_matching'", "recipe_options.aux_start=false"])
    se, _ = build()
    assert (fm.s_policy, se.s_policy) == ("same", "next")
    assert fm.loss.mode == "flow_matching"


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("recipe_options.mode='self_eval'", "mode"),
        ("recipe_options.backbone='dit'", "backbone"),
        ("recipe_options.backbone_options={hiden=3}", "backbone_options"),
        ("recipe_options.loss_options={mode='flow_matching'}", "loss_options: mode"),
        ("recipe_options.loss_options={t_min=0}", "t_min"),
        ("recipe_options.prompt_dropout=1.5", "prompt_dropout"),
        ("recipe_options.aux_start=2.0", "aux_start"),
        ("recipe_options.text_encoder='no_such_encoder'", "text_encoder"),
        ("recipe_options.text_encoder_options={context_length=4}", "context_length"),
        ("recipe_options.scale=0.5", "scale"),
        ("recipe_options.s_policy='nxt'", "did you mean"),
        ("recipe_options.sampeler='euler'", "did you mean"),
    ],
)
def test_bad_options_are_one_line_config_errors(override, match):
    with pytest.raises(ConfigError, match=match) as exc:
        build([override])
    assert "\n" not in str(exc.value)


def test_aux_with_flow_matching_is_refused():
    with pytest.raises(ConfigError, match="aux_start") as exc:
        build(["recipe_options.mode='flow_matching'"])
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("backbone", ["unet", "flux"])
def test_the_image_backbones_train_a_step(backbone):
    options = {
        "unet": "{config={block_out_channels=[8, 16], norm_num_groups=4}}",
        "flux": "{}",
    }[backbone]
    recipe, dataset = build(
        [f"recipe_options.backbone={backbone!r}", f"recipe_options.backbone_options={options}"]
    )
    out = recipe.step(batch(dataset, 4), torch.Generator().manual_seed(0))
    out.loss.backward()
    assert torch.isfinite(out.loss)
    assert recipe.sample(2, steps=1, generator=torch.Generator().manual_seed(0)).shape == (
        2,
        1,
        8,
        8,
    )
