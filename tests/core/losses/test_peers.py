"""The library's two-view losses against peer libraries (values and input gradients).

Peers, read from their installed sources before writing these tests:

- lightly ``NTXentLoss``: L2-normalises, softmax CE over the 2N rows (other view as target,
  self removed), ``reduction="mean"`` → the mean over the 2N anchors, the same as ``infonce``.
- lightly ``DCLLoss`` / ``DCLWLoss``: normalise, return ½(mean_i L^(1) + mean_i L^(2)), i.e.
  the mean over the 2N anchors, as ``dcl`` / ``dclw``. DCLW's weights 2 − N·softmax(s_ii/σ)
  are computed from detached embeddings (``torch.tensor`` copy), as the library's default, so
  the gradients must agree too. No constant factor between the two.
- pytorch_metric_learning ``SupConLoss``: cosine similarity (normalises), self excluded,
  positives = same label; its ``AvgNonZeroReducer`` averages only the anchors with a loss > 0.
  With two views every anchor has its other view as a positive (and a loss > 0), so that is
  the mean over all 2N anchors, as the library. Labels need at least two classes (else PML
  returns 0 for want of negatives).
- open_clip ``ClipLoss`` / ``SigLipLoss``: take normalised features and the logit scale as
  the multiplier itself (not its log); ClipLoss = ½ (CE rows + CE columns); SigLipLoss =
  −Σ log σ(±(scale·s + bias)) / N. The library keeps its scale (and bias) in float32, so the
  peers get the library's effective, float32-rounded values.

Everything runs in float64, which all these peers accept.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F

import manyview

from . import reference as R
from ._helpers import assert_loss_close, raw_views, unit

# Importing the peers (lightly pulls in torchvision) takes ~10 s on a 2-core machine.
pytestmark = pytest.mark.slow

CASES: list[tuple[int, int, float]] = [(2, 3, 0.1), (5, 8, 0.05), (9, 16, 0.5), (16, 32, 0.1)]
GRAD_RTOL = 1e-8
GRAD_ATOL = 1e-10


def _case_id(case: tuple[int, int, float]) -> str:
    n, d, tau = case
    return f"N{n}-D{d}-t{tau}"


def _views(case: tuple[int, int, float], salt: int) -> tuple[torch.Tensor, torch.Tensor]:
    n, d, tau = case
    raw = raw_views(n, 2, d, seed=100 * n + d + int(1000 * tau) + 7919 * salt)
    return raw[:, 0].clone(), raw[:, 1].clone()


def _value_and_grads(
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], z0: torch.Tensor, z1: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    a = z0.clone().requires_grad_(True)
    b = z1.clone().requires_grad_(True)
    value = fn(a, b)
    value.backward()
    assert a.grad is not None and b.grad is not None
    return value.detach(), a.grad, b.grad


def _compare(
    ours: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    peer: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    z0: torch.Tensor,
    z1: torch.Tensor,
) -> torch.Tensor:
    value, g0, g1 = _value_and_grads(ours, z0, z1)
    peer_value, p0, p1 = _value_and_grads(peer, z0, z1)
    assert peer_value.dtype == torch.float64
    assert_loss_close(value, peer_value.item())
    assert torch.allclose(g0, p0, rtol=GRAD_RTOL, atol=GRAD_ATOL), (g0 - p0).abs().max()
    assert torch.allclose(g1, p1, rtol=GRAD_RTOL, atol=GRAD_ATOL), (g1 - p1).abs().max()
    return value


@pytest.mark.parametrize(
    ("name", "peer_name", "salt"), [("infonce", "NTXentLoss", 1), ("dcl", "DCLLoss", 2)]
)
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_lightly_ntxent_and_dcl(
    case: tuple[int, int, float], name: str, peer_name: str, salt: int
) -> None:
    lightly_loss = pytest.importorskip("lightly.loss")
    _, _, tau = case
    z0, z1 = _views(case, salt)
    ours = manyview.create("loss", name, temperature=tau)
    peer = getattr(lightly_loss, peer_name)(temperature=tau)
    value = _compare(lambda a, b: ours([a, b]), peer, z0, z1)
    reference = getattr(R, name)
    assert_loss_close(value, reference(unit(torch.stack([z0, z1], dim=1)), tau))


@pytest.mark.parametrize("sigma", [0.5, 0.2])
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_lightly_dclw(case: tuple[int, int, float], sigma: float) -> None:
    lightly_loss = pytest.importorskip("lightly.loss")
    _, _, tau = case
    z0, z1 = _views(case, 3)
    ours = manyview.create("loss", "dclw", temperature=tau, sigma=sigma)
    peer = lightly_loss.DCLWLoss(temperature=tau, sigma=sigma)

    def peer_quiet(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        # lightly builds its weights with torch.tensor(tensor), which warns; harmless here.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return peer(a, b)

    value = _compare(lambda a, b: ours([a, b]), peer_quiet, z0, z1)
    z = unit(torch.stack([z0, z1], dim=1))
    assert_loss_close(value, R.dcl(z, tau, weighted=True, sigma=sigma))


@pytest.mark.parametrize("variant", ["same-instance", "classes"])
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_pml_supcon(case: tuple[int, int, float], variant: str) -> None:
    pml_losses = pytest.importorskip("pytorch_metric_learning.losses")
    n, _, tau = case
    z0, z1 = _views(case, 4)
    # Two views: every anchor has at least its other view as a positive, so PML's average over
    # anchors with a nonzero loss is the mean over all 2N anchors. At least two classes.
    labels = torch.arange(n) if variant == "same-instance" else torch.arange(n) % 2
    ours = manyview.create("loss", "supcon", temperature=tau)
    peer = pml_losses.SupConLoss(temperature=tau)
    value = _compare(
        lambda a, b: ours([a, b], labels=labels),
        lambda a, b: peer(torch.cat([a, b]), torch.cat([labels, labels])),
        z0,
        z1,
    )
    assert_loss_close(value, R.supcon(unit(torch.stack([z0, z1], dim=1)), tau, labels=labels))


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_open_clip_clip_loss(case: tuple[int, int, float]) -> None:
    open_clip_loss = pytest.importorskip("open_clip.loss")
    _, _, tau = case
    z0, z1 = _views(case, 5)
    ours = manyview.create("loss", "clip", temperature=tau)
    scale = torch.tensor(1.0 / tau, dtype=torch.float64)  # a fixed scale is exact
    peer = open_clip_loss.ClipLoss()
    _compare(
        lambda a, b: ours([a, b]),
        lambda a, b: peer(F.normalize(a, dim=-1), F.normalize(b, dim=-1), scale),
        z0,
        z1,
    )


@pytest.mark.parametrize(("scale", "bias"), [(10.0, -10.0), (3.0, 0.5)])
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_open_clip_siglip_loss(case: tuple[int, int, float], scale: float, bias: float) -> None:
    open_clip_loss = pytest.importorskip("open_clip.loss")
    z0, z1 = _views(case, 6)
    ours = manyview.create("loss", "siglip", scale=scale, bias=bias)
    eff_scale = ours.logit_scale.detach().double().exp()
    eff_bias = ours.logit_bias.detach().double()
    peer = open_clip_loss.SigLipLoss()
    _compare(
        lambda a, b: ours([a, b]),
        lambda a, b: peer(F.normalize(a, dim=-1), F.normalize(b, dim=-1), eff_scale, eff_bias),
        z0,
        z1,
    )
