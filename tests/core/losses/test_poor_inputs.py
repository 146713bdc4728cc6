"""Poor loss inputs and options give one-line errors that name the problem and the fix, for
every registered loss where the check is generic."""

from __future__ import annotations

import inspect

import pytest
import torch

import manyview
from manyview.distill.kd import KD
from manyview.losses import InfoNCE, NonFiniteInputError, SigLIPLoss, check_generator
from manyview.metrics import effective_rank
from manyview.testing import build, is_distillation

LOSSES = manyview.available("loss")
VIEW_LOSSES = [n for n in LOSSES if not is_distillation(build("loss", n))]


def _inputs(loss, n=6, m=None, d=8):
    return loss.example_inputs(n, m, d, generator=torch.Generator().manual_seed(0))


def _one_line(info) -> str:
    text = str(info.value)
    assert text and "\n" not in text, text
    return text


@pytest.mark.parametrize("name", VIEW_LOSSES)
def test_embeddings_without_features_are_refused(name):
    loss = build("loss", name)
    views, kwargs = _inputs(loss, d=0)
    with pytest.raises(ValueError, match=r"D = 0 features.*output_dim") as info:
        loss(views, **kwargs)
    _one_line(info)


@pytest.mark.parametrize("name", LOSSES)
def test_inputs_on_the_meta_device_are_refused(name):
    loss = build("loss", name)
    views, kwargs = _inputs(loss)
    with pytest.raises(ValueError, match=r"'meta' device.*materialise") as info:
        loss(views.to("meta"), **kwargs)
    _one_line(info)


@pytest.mark.parametrize("name", LOSSES)
def test_nan_inputs_raise_non_finite_input_error(name):
    loss = build("loss", name)
    views, kwargs = _inputs(loss)
    views = views.clone()
    views.view(-1)[0] = float("nan")
    with pytest.raises(NonFiniteInputError, match="NaN or inf"):
        loss(views, **kwargs)
    assert issubclass(NonFiniteInputError, ValueError)


def _temperature_options(name):
    params = inspect.signature(manyview.entry("loss", name).load()).parameters
    wanted = [p for p in params if p.endswith("temperature") and p != "base_temperature"]
    return wanted + (["tau_init"] if "tau_init" in params else [])


TEMPERATURES = [(n, p) for n in LOSSES for p in _temperature_options(n)]


@pytest.mark.parametrize(("name", "option"), TEMPERATURES)
def test_a_temperature_below_float32s_range_is_refused(name, option):
    """1e-39 used to give a torch overflow error, or NaN from clip."""
    extra = {"tau_min": 1e-39} if option == "tau_init" else {}
    with pytest.raises(ValueError, match=rf"{option} 1e-39 is too small.*overflows float32") as i:
        build("loss", name, **{option: 1e-39}, **extra)
    _one_line(i)


@pytest.mark.parametrize(("name", "option"), TEMPERATURES)
def test_a_temperature_of_none_is_refused_naming_it(name, option):
    with pytest.raises(ValueError, match=rf"'?{option}'? must be a (positive finite )?number"):
        build("loss", name, **{option: None})


def test_a_temperature_of_none_is_refused_by_the_classes_too():
    with pytest.raises(
        ValueError, match=r"(?i)infonce: temperature must be a positive finite number"
    ):
        InfoNCE(temperature=None)
    with pytest.raises(ValueError, match="KD: temperature must be"):
        KD(temperature=None)


NORMALIZING = [
    n
    for n in VIEW_LOSSES
    if "normalize" in inspect.signature(manyview.entry("loss", n).load()).parameters
]


@pytest.mark.parametrize("name", NORMALIZING)
def test_overflowing_similarities_without_normalisation_are_reported(name):
    """normalize=False with huge embeddings used to return NaN silently."""
    loss = build("loss", name, normalize=False)
    views, kwargs = _inputs(loss)
    with pytest.raises(ValueError, match=r"not finite with normalize=False.*normalize=True") as i:
        loss(views * 1e25, **kwargs)
    assert "temperature" in _one_line(i)


def test_infonce_without_normalisation_reports_the_overflow():
    loss = manyview.create("loss", "infonce", normalize=False)
    with pytest.raises(ValueError, match=r"normalize=False.*overflow; use normalize=True"):
        loss(torch.randn(4, 2, 8) * 1e25)


def test_a_non_binary_float_mask_is_refused_by_supcon():
    loss = manyview.create("loss", "supcon")
    z = torch.randn(4, 2, 8)
    with pytest.raises(ValueError, match=r"mask must be binary.*mask > 0"):
        loss(z, mask=torch.full((4, 4), 0.5))
    binary = torch.eye(4)  # a 0/1 float mask is a mask
    assert torch.isclose(loss(z, mask=binary), loss(z, mask=binary.bool()))


@pytest.mark.parametrize(
    ("name", "options"),
    [("isogclr", {"num_samples": 10**12}), ("crd", {"num_samples": 10**12})],
)
def test_absurd_buffer_sizes_are_refused_up_front(name, options):
    with pytest.raises(ValueError, match=r"num_samples=10+ would take .*TiB.*check the option"):
        manyview.create("loss", name, **options)


def test_a_string_bias_is_refused_by_siglip():
    with pytest.raises(ValueError, match="'bias' must be a number"):
        manyview.create("loss", "siglip", bias="x")
    with pytest.raises(ValueError, match="siglip: bias must be a finite number, got 'x'"):
        SigLIPLoss(bias="x")


def test_check_generator_refuses_a_seed():
    with pytest.raises(ValueError, match=r"generator must be a torch.Generator.*manual_seed\(42\)"):
        check_generator(42, "x")
    g = torch.Generator()
    assert check_generator(g, "x") is g and check_generator(None, "x") is None


def test_effective_rank_of_an_empty_input_is_refused():
    """It used to return 1.0."""
    with pytest.raises(ValueError, match="effective_rank: the embeddings are empty"):
        effective_rank(torch.zeros(0, 4))
