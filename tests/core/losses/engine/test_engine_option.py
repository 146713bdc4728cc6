"""Every loss with an ``engine`` option (``manyview.losses.engine.EngineConfig``):
``engine="tiled"`` against ``engine="dense"`` in value and gradient (float64 tight, float32
to 1e-5), through ``compute`` and through the distributed ``compute_local`` shares, at 4 x 7
tiles (``EngineConfig("tiled", tile=(4, 7))``: every batch spans several ragged tiles);
``"auto"`` switching at the config's ``min_entries`` (checked by counting calls, not by
timing); the engine as a string, a table or a config; bad engine names.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F

import manyview
from manyview.losses import clip
from manyview.losses.engine import DEFAULT_MIN_ENTRIES, DEFAULT_TILE, EngineConfig
from manyview.losses.engine.autograd import TiledLSE, TiledLSERowsCols

SMALL_TILES = EngineConfig("tiled", tile=(4, 7))
"""4 x 7 tiles: every batch here spans several tiles with ragged last ones."""
ENGINES = {"dense": "dense", "tiled": SMALL_TILES}

LABELS = [0, 1, 2, 0, 1, 2, 3, 3, 0, 1, 1, 2, 4]


def _labels(n: int) -> torch.Tensor:
    return torch.tensor((LABELS * 2)[:n])


def _mask(n: int) -> torch.Tensor:
    mask = torch.rand(n, n, generator=torch.Generator().manual_seed(n)) < 0.4
    mask[0] = False  # an instance without positives
    return mask


# (name, create() keywords, inputs(n) -> call keywords, two views only)
LossSpec = tuple[str, dict[str, Any], Callable[[int], dict[str, Any]], bool]
LOSSES: list[LossSpec] = [
    ("infonce", {}, lambda n: {}, False),
    ("clip", {}, lambda n: {}, True),
    ("clip", {"learnable": True}, lambda n: {}, True),
    ("mv_infonce", {}, lambda n: {}, False),
    ("mv_infonce", {"intra_view_negatives": False}, lambda n: {}, False),
    ("mv_dhel", {}, lambda n: {}, False),
    ("dhel", {}, lambda n: {}, True),
    ("dhel", {"include_augs": False}, lambda n: {}, True),
    ("dcl", {}, lambda n: {}, False),
    ("dclw", {}, lambda n: {}, False),
    ("dclw", {"detach_weights": False}, lambda n: {}, False),
    ("pvc", {}, lambda n: {}, False),
    ("pvc", {"method": "arithmetic"}, lambda n: {}, False),
    ("supcon", {}, lambda n: {}, False),
    ("supcon", {}, lambda n: {"labels": _labels(n)}, False),
    ("supcon", {}, lambda n: {"mask": _mask(n)}, False),
    ("supcon", {"variant": "in"}, lambda n: {}, False),
    ("supcon", {"variant": "in"}, lambda n: {"labels": _labels(n)}, False),
    (
        "supcon",
        {"variant": "in", "anchors": "one", "base_temperature": 0.07},
        lambda n: {"labels": _labels(n)},
        False,
    ),
    ("supcon", {"anchors": "one"}, lambda n: {"mask": _mask(n)}, False),
    ("pwe", {"base": "infonce"}, lambda n: {}, False),
    ("pwe", {"base": "dhel"}, lambda n: {}, False),
    ("isogclr", {"num_samples": 40}, lambda n: {"index": torch.arange(3, 3 + n)}, False),
]
LOSS_IDS = [
    f"{name}({','.join(f'{k}={v}' for k, v in kw.items())})"
    + ("-" + ",".join(inp(4)) if inp(4) else "")
    for name, kw, inp, _ in LOSSES
]
CASES = [(5, 2, 8, 0.1), (9, 3, 4, 0.05), (13, 4, 6, 0.5), (2, 2, 3, 0.2)]


def _create(
    name: str, kwargs: dict[str, Any], tau: float, engine: str | EngineConfig
) -> torch.nn.Module:
    kwargs = dict(kwargs)
    if name == "clip":
        kwargs["temperature"] = tau
    elif name == "isogclr":
        kwargs.update(tau_init=tau, tau_min=min(tau, 0.05), tau_max=max(tau, 0.7))
    else:
        kwargs["temperature"] = tau
    return manyview.create("loss", name, engine=engine, **kwargs)


def _run(
    loss: torch.nn.Module, views: torch.Tensor, inputs: dict[str, Any], steps: int = 1
) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
    """Values, view gradients and parameter gradients over ``steps`` forwards (training
    mode: a stateful loss updates its state in between)."""
    values, grads, params = [], [], []
    for step in range(steps):
        x = (views * (1 + 0.1 * step)).detach().requires_grad_()
        loss.zero_grad()
        value = loss(x, **inputs)
        value.backward()
        values.append(value.detach())
        assert x.grad is not None
        grads.append(x.grad)
        params.extend(p.grad.clone() for p in loss.parameters() if p.grad is not None)
    return values, grads, params


def _relative(got: torch.Tensor, want: torch.Tensor) -> float:
    return float(
        (got.double() - want.double()).abs().max() / want.double().abs().max().clamp(min=1e-30)
    )


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
@pytest.mark.parametrize("case", CASES, ids=lambda c: "N{}-M{}-D{}-t{}".format(*c))
@pytest.mark.parametrize("spec", LOSSES, ids=LOSS_IDS)
def test_tiled_loss_matches_dense(
    spec: LossSpec, case: tuple[int, int, int, float], dtype: torch.dtype
) -> None:
    name, kwargs, inputs, two_view = spec
    n, m, d, tau = case
    if two_view:
        m = 2
    views = torch.randn(
        n, m, d, generator=torch.Generator().manual_seed(n * m), dtype=torch.float64
    )
    views = views.to(dtype)
    call = inputs(n)
    steps = 3 if name == "isogclr" else 1
    results = {}
    for engine, option in ENGINES.items():
        loss = _create(name, kwargs, tau, option).train()
        if dtype == torch.float64:
            loss = loss.double()
        results[engine] = _run(loss, views, call, steps)
    tol = 1e-11 if dtype == torch.float64 else 1e-5
    for dense, tiled_ in zip(results["dense"], results["tiled"], strict=True):
        assert len(dense) == len(tiled_)
        for want, got in zip(dense, tiled_, strict=True):
            assert got.dtype == want.dtype
            assert _relative(got, want) < tol, (_relative(got, want), got, want)


# the losses with their own compute_local (pwe and isogclr fall back to the full loss)
LOCAL = [spec for spec in LOSSES if spec[0] not in ("pwe", "isogclr")]
LOCAL_IDS = [i for spec, i in zip(LOSSES, LOSS_IDS, strict=True) if spec in LOCAL]


@pytest.mark.parametrize("window", [(0, 3), (2, 4), (5, 6), (0, 11)], ids=str)
@pytest.mark.parametrize("spec", LOCAL, ids=LOCAL_IDS)
def test_tiled_local_anchors_match_dense(spec: LossSpec, window: tuple[int, int]) -> None:
    """``compute_local`` (one rank's anchors against every global candidate, masks by
    global ids), tiled against dense, value and gradient."""
    name, kwargs, inputs, two_view = spec
    n, m, d, tau = 11, 2 if two_view else 3, 5, 0.1
    offset, count = window
    z0 = F.normalize(
        torch.randn(n, m, d, generator=torch.Generator().manual_seed(9), dtype=torch.float64),
        dim=-1,
    )
    call = {"labels": None, "index": None, **inputs(n)}
    out = {}
    for engine, option in ENGINES.items():
        loss = _create(name, kwargs, tau, option).double()
        z = z0.clone().requires_grad_()
        value = loss.compute_local(z, offset=offset, count=count, **call)
        (grad,) = torch.autograd.grad(value, z)
        out[engine] = value, grad
    assert torch.allclose(out["tiled"][0], out["dense"][0], rtol=1e-12, atol=1e-12)
    assert torch.allclose(out["tiled"][1], out["dense"][1], rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------------------------
# engine="auto" and the engine names
# --------------------------------------------------------------------------------------------

ENGINE_LOSSES = sorted({name for name, *_ in LOSSES})


def _count_tiled_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A counter of the tiled forms' autograd calls (a spy on their ``apply``)."""
    calls = [0]
    for fn in (TiledLSE, TiledLSERowsCols):

        def spy(*args: Any, apply: Any = fn.apply) -> Any:
            calls[0] += 1
            return apply(*args)

        monkeypatch.setattr(fn, "apply", spy)
    return calls


@pytest.mark.parametrize("name", ENGINE_LOSSES)
def test_auto_tiles_above_the_threshold(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_tiled_calls(monkeypatch)
    spec = next(s for s in LOSSES if s[0] == name)
    n = 8
    views = torch.randn(n, 2, 4, generator=torch.Generator().manual_seed(0))
    loss = _create(name, spec[1], 0.1, "auto")
    assert loss.engine == EngineConfig("auto")
    loss(views, **spec[2](n))
    assert calls[0] == 0  # the default threshold is far above these sizes: dense
    _create(name, spec[1], 0.1, EngineConfig(min_entries=0))(views, **spec[2](n))
    assert calls[0] > 0
    for engine, expected in (("dense", 0), ("tiled", 1)):
        calls[0] = 0
        _create(name, spec[1], 0.1, engine)(views, **spec[2](n))
        assert (calls[0] > 0) == bool(expected), engine


def test_auto_threshold_is_strict(monkeypatch: pytest.MonkeyPatch) -> None:
    """InfoNCE on N=8, M=2 builds 16 x 16 = 256 logits: tiled above 255, dense at 256."""
    calls = _count_tiled_calls(monkeypatch)
    views = torch.randn(8, 2, 4)
    manyview.create("loss", "infonce", engine=EngineConfig(min_entries=256))(views)
    assert calls[0] == 0
    manyview.create("loss", "infonce", engine=EngineConfig(min_entries=255))(views)
    assert calls[0] == 1


def test_default_threshold_and_tiles() -> None:
    assert DEFAULT_MIN_ENTRIES >= 1024 * 1024
    assert DEFAULT_TILE[0] * DEFAULT_TILE[1] <= 4096 * 4096
    auto = EngineConfig()
    assert (auto.min_entries, auto.tile) == (DEFAULT_MIN_ENTRIES, DEFAULT_TILE)
    assert auto.use_tiled(DEFAULT_MIN_ENTRIES + 1)
    assert not auto.use_tiled(DEFAULT_MIN_ENTRIES)
    assert EngineConfig("tiled").use_tiled(1) and not EngineConfig("dense").use_tiled(10**12)


@pytest.mark.parametrize("name", ENGINE_LOSSES)
@pytest.mark.parametrize(
    ("engine", "match"), [("tiles", "did you mean 'tiled'"), ("Dense", "dense"), ("flash", "auto")]
)
def test_bad_engine_names(name: str, engine: str, match: str) -> None:
    spec = next(s for s in LOSSES if s[0] == name)
    with pytest.raises(ValueError, match=match):
        _create(name, spec[1], 0.1, engine)


def test_pwe_engine_needs_a_base_by_name() -> None:
    base = manyview.create("loss", "infonce")
    with pytest.raises(ValueError, match="engine"):
        manyview.create("loss", "pwe", base=base, engine="tiled")
    pwe = manyview.create("loss", "pwe", base="infonce", engine=SMALL_TILES)
    assert pwe.base.engine is SMALL_TILES
    assert (
        manyview.create("loss", "pwe", base="infonce", engine="tiled").base.engine.mode == "tiled"
    )
    with pytest.raises(ValueError, match="engine"):
        manyview.create("loss", "pwe", base=base, engine=EngineConfig(tile=8))


def test_supcon_in_with_mask_stays_dense_under_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_tiled_calls(monkeypatch)
    views = torch.randn(6, 2, 4, dtype=torch.float64)
    mask = _mask(6)
    auto = manyview.create("loss", "supcon", variant="in", engine=EngineConfig(min_entries=0))
    dense = manyview.create("loss", "supcon", variant="in", engine="dense")
    assert torch.equal(auto(views, mask=mask), dense(views, mask=mask))
    assert calls[0] == 0
    with pytest.raises(ValueError, match="variant='in' with mask"):
        manyview.create("loss", "supcon", variant="in", engine="tiled")(views, mask=mask)


def test_clip_learnable_scale_gets_its_gradient() -> None:
    views = torch.randn(9, 2, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    grads = {}
    for engine, option in ENGINES.items():
        loss = manyview.create("loss", "clip", learnable=True, engine=option).double()
        loss(views).backward()
        grads[engine] = loss.logit_scale.grad
    assert grads["tiled"] is not None and grads["dense"] is not None
    assert grads["dense"].abs() > 0
    assert torch.allclose(grads["tiled"], grads["dense"], rtol=1e-12, atol=1e-14)


def test_large_batch_tiles_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch whose dense logits exceed the threshold is tiled with the default engine and
    agrees with the dense engine (a lowered threshold keeps the test small)."""
    calls = _count_tiled_calls(monkeypatch)
    views = torch.randn(40, 2, 16, generator=torch.Generator().manual_seed(2))
    tiled_value = manyview.create("loss", "infonce", engine=EngineConfig(min_entries=64 * 64))(
        views
    )
    assert calls[0] == 1
    dense_value = manyview.create("loss", "infonce", engine="dense")(views)
    assert math.isclose(tiled_value.item(), dense_value.item(), rel_tol=1e-6)


def test_clip_tiles_from_an_eighth_of_the_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    """CLIP's one-walk tiled form wins earlier: auto tiles above min_entries / 8, so from
    N = 725 with the default threshold."""
    calls = _count_tiled_calls(monkeypatch)
    views = torch.randn(16, 2, 4)  # 16 x 16 = 256 logits
    manyview.create("loss", "clip", engine=EngineConfig(min_entries=8 * 256))(views)
    assert calls[0] == 0
    manyview.create("loss", "clip", engine=EngineConfig(min_entries=8 * 255))(views)
    assert calls[0] == 1
    auto = EngineConfig()  # the default threshold
    assert not auto.use_tiled(724**2, factor=clip.TILED_FACTOR)
    assert auto.use_tiled(725**2, factor=clip.TILED_FACTOR)
