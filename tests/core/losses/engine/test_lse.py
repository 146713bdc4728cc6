"""The tiled log-sum-exp engine (``manyview.losses.tiled``, ``losses.md`` §13).

- :func:`tiled_logsumexp` against a dense float64 computation written here: value and the
  gradients in a, b and every kind of scale; with and without exclusion ids; rows with every
  entry excluded; ragged last tiles; rectangular inputs; float32 and bf16 (autocast)
  precision; ``gradcheck``; argument checks.
- Every loss with an ``engine`` option: ``engine="tiled"`` against ``engine="dense"`` in
  value and gradient (float64 tight, float32 to 1e-5), through ``compute`` and through the
  distributed ``compute_local`` shares; ``engine="auto"`` switching at
  ``TILED_MIN_ENTRIES`` (checked by counting calls, not by timing); bad engine names.
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
from manyview.losses.engine import tiles as tiled
from manyview.losses.engine.tiles import tiled_logsumexp

# --------------------------------------------------------------------------------------------
# the primitive
# --------------------------------------------------------------------------------------------


def dense_lse(
    a: torch.Tensor,
    b: torch.Tensor,
    scale: float | torch.Tensor,
    row_ids: torch.Tensor | None = None,
    col_ids: torch.Tensor | None = None,
) -> torch.Tensor:
    """The (R x C) matrix form: logsumexp over each row of scale_i·a@bᵀ, excluded entries
    set to -inf (a fully excluded row is -inf)."""
    scale_col = scale[:, None] if isinstance(scale, torch.Tensor) and scale.dim() == 1 else scale
    logits = scale_col * (a @ b.T)
    if row_ids is not None and col_ids is not None:
        logits = logits.masked_fill(row_ids[:, None] == col_ids[None, :], float("-inf"))
    return torch.logsumexp(logits, dim=1)


def _inputs(
    r: int, c: int, d: int, *, seed: int = 0, dtype: torch.dtype = torch.float64
) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    a = F.normalize(torch.randn(r, d, generator=gen, dtype=torch.float64), dim=1)
    b = F.normalize(torch.randn(c, d, generator=gen, dtype=torch.float64), dim=1)
    return a.to(dtype), b.to(dtype)


def _scale(kind: str, r: int, dtype: torch.dtype = torch.float64) -> float | torch.Tensor:
    if kind == "float":
        return 7.5
    if kind == "0dim":
        return torch.tensor(4.0, dtype=dtype, requires_grad=True)
    gen = torch.Generator().manual_seed(r)
    return (
        (2.0 + 18.0 * torch.rand(r, generator=gen, dtype=torch.float64)).to(dtype).requires_grad_()
    )


def _ids(kind: str, r: int, c: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """No ids; self-exclusion (row i is column ``2i + 1`` when there is one); or random
    small ids (several excluded entries per row, some rows with none)."""
    if kind == "none":
        return None, None
    if kind == "self":
        return 2 * torch.arange(r) + 1, torch.arange(c)
    gen = torch.Generator().manual_seed(r * c)
    return torch.randint(0, 6, (r,), generator=gen), torch.randint(0, 5, (c,), generator=gen)


def _grads(
    fn: Callable[..., torch.Tensor], a: torch.Tensor, b: torch.Tensor, scale: Any, **kw: Any
) -> tuple[torch.Tensor, list[torch.Tensor | None]]:
    """The value and the gradients of Σ_i w_i·lse_i (fixed random weights w, some negative)
    in a, b and the scale (None for a number)."""
    leaves = [a.detach().clone().requires_grad_(), b.detach().clone().requires_grad_()]
    if isinstance(scale, torch.Tensor):
        leaves.append(scale.detach().clone().requires_grad_())
    lse = fn(leaves[0], leaves[1], leaves[2] if len(leaves) == 3 else scale, **kw)
    gen = torch.Generator().manual_seed(3)
    w = torch.randn(lse.shape[0], generator=gen, dtype=torch.float64).to(lse.dtype)
    finite = torch.isfinite(lse)
    (lse[finite] * w[finite]).sum().backward()
    grads: list[torch.Tensor | None] = [t.grad for t in leaves]
    return lse.detach(), grads + [None] * (3 - len(grads))


def _materialised(a: Any, b: Any, scale: Any, *, tile: Any = None, **kw: Any) -> torch.Tensor:
    """dense_logsumexp with tiled_logsumexp's signature (no tiles)."""
    return tiled.dense_logsumexp(a, b, scale, **kw)


LSE_FUNCTIONS = {"tiled": tiled_logsumexp, "materialised": _materialised}
lse_functions = pytest.mark.parametrize(
    "lse_fn", list(LSE_FUNCTIONS.values()), ids=list(LSE_FUNCTIONS)
)


SHAPES = [  # (R, C, D, tile)
    (37, 53, 5, 16),  # ragged last tiles in both directions
    (53, 37, 4, (8, 16)),  # rectangular, rows > columns
    (16, 16, 3, 16),  # exactly one tile
    (5, 40, 6, 3),  # many tiny tiles
    (20, 7, 8, 64),  # one tile larger than the input
]


@pytest.mark.parametrize("ids", ["none", "self", "random"])
@pytest.mark.parametrize("scale_kind", ["float", "0dim", "rows"])
@pytest.mark.parametrize(("r", "c", "d", "tile"), SHAPES, ids=str)
@lse_functions
def test_matches_dense_float64(
    lse_fn: Callable[..., torch.Tensor],
    r: int,
    c: int,
    d: int,
    tile: Any,
    scale_kind: str,
    ids: str,
) -> None:
    a, b = _inputs(r, c, d, seed=r + c)
    scale = _scale(scale_kind, r)
    row_ids, col_ids = _ids(ids, r, c)
    value, grads = _grads(lse_fn, a, b, scale, row_ids=row_ids, col_ids=col_ids, tile=tile)
    expected, expected_grads = _grads(dense_lse, a, b, scale, row_ids=row_ids, col_ids=col_ids)
    assert value.dtype == torch.float64 and value.shape == (r,)
    assert torch.equal(torch.isinf(value), torch.isinf(expected))
    finite = torch.isfinite(expected)
    assert torch.allclose(value[finite], expected[finite], rtol=1e-12, atol=1e-12)
    for got, want, name in zip(grads, expected_grads, ("a", "b", "scale"), strict=True):
        if want is None:
            assert got is None, name
            continue
        assert got is not None, name
        assert torch.allclose(got, want, rtol=1e-11, atol=1e-12), (name, (got - want).abs().max())


@lse_functions
def test_fully_excluded_rows_give_minus_inf_and_no_gradient(
    lse_fn: Callable[..., torch.Tensor],
) -> None:
    a, b = _inputs(9, 11, 4)
    row_ids = torch.tensor([0, 1, 0, 2, 1, 7, 0, 7, 3])
    col_ids = torch.tensor([0, 1, 0, 2, 1, 1, 0, 2, 3, 3, 0])  # no row loses every column
    only = torch.zeros(11, dtype=torch.long)  # every column has id 0: rows 0, 2, 6 lose all
    for cols, excluded in ((only, row_ids == 0), (col_ids, torch.zeros(9, dtype=torch.bool))):
        x = a.clone().requires_grad_()
        y = b.clone().requires_grad_()
        s = torch.full((9,), 3.0, dtype=torch.float64, requires_grad=True)
        lse = lse_fn(x, y, s, row_ids=row_ids, col_ids=cols, tile=(2, 4))
        assert torch.equal(lse == float("-inf"), excluded)
        lse[~excluded].sum().backward()
        assert x.grad is not None and s.grad is not None and y.grad is not None
        assert torch.isfinite(x.grad).all() and torch.isfinite(y.grad).all()
        assert (x.grad[excluded] == 0).all() and (s.grad[excluded] == 0).all()
    # every row excluded, and the gradient of -inf rows asked for: zero, not NaN
    x = a.clone().requires_grad_()
    lse = lse_fn(x, b, 2.0, row_ids=torch.zeros(9, dtype=torch.long), col_ids=only)
    assert (lse == float("-inf")).all()
    lse.sum().backward()
    assert x.grad is not None and (x.grad == 0).all()


@lse_functions
def test_empty_inputs(lse_fn: Callable[..., torch.Tensor]) -> None:
    a, b = _inputs(4, 6, 3)
    assert lse_fn(a[:0], b, 1.0).shape == (0,)
    lse = lse_fn(a, b[:0], 1.0)
    assert (lse == float("-inf")).all() and lse.shape == (4,)


@pytest.mark.parametrize("scale_kind", ["float", "0dim", "rows"])
@lse_functions
def test_float32_matches_float64_dense(
    lse_fn: Callable[..., torch.Tensor], scale_kind: str
) -> None:
    """float32 tiles to relative error < 1e-5 of the float64 dense result, gradients too."""
    r, c, d = 300, 500, 32
    a, b = _inputs(r, c, d, seed=1)
    row_ids, col_ids = torch.arange(r) + 100, torch.arange(c)
    scale64 = _scale(scale_kind, r)
    scale32 = scale64 if isinstance(scale64, float) else scale64.detach().float()
    value, grads = _grads(
        lse_fn,
        a.float(),
        b.float(),
        scale32,
        row_ids=row_ids,
        col_ids=col_ids,
        tile=(64, 96),
    )
    expected, expected_grads = _grads(dense_lse, a, b, scale64, row_ids=row_ids, col_ids=col_ids)
    assert value.dtype == torch.float32
    assert ((value.double() - expected).abs() / expected.abs()).max() < 1e-5
    for got, want in zip(grads, expected_grads, strict=True):
        if want is not None:
            assert got is not None and got.dtype == torch.float32
            assert (got.double() - want).abs().max() / want.abs().max() < 1e-5


@lse_functions
def test_gradcheck_float64(lse_fn: Callable[..., torch.Tensor]) -> None:
    a, b = _inputs(5, 7, 3, seed=2)
    a.requires_grad_()
    b.requires_grad_()
    scale = torch.tensor([1.5, 2.0, 0.5, 3.0, 1.0], dtype=torch.float64, requires_grad=True)
    row_ids, col_ids = torch.tensor([0, 3, 9, 4, 1]), torch.arange(7)

    def fn(x: torch.Tensor, y: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return lse_fn(x, y, s, row_ids=row_ids, col_ids=col_ids, tile=(2, 3))

    assert torch.autograd.gradcheck(fn, (a, b, scale))
    zero_dim = torch.tensor(2.5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, y, s: lse_fn(x, y, s, tile=2), (a, b, zero_dim))


def test_bf16_under_autocast() -> None:
    a, b = _inputs(40, 70, 16, seed=4, dtype=torch.float32)
    ids = torch.arange(40), torch.arange(70)
    reference = tiled_logsumexp(a, b, 10.0, row_ids=ids[0], col_ids=ids[1], tile=16)
    x = a.bfloat16().requires_grad_()
    y = b.bfloat16().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        lse = tiled_logsumexp(x, y, 10.0, row_ids=ids[0], col_ids=ids[1], tile=16)
        same = tiled_logsumexp(a, b, 10.0, row_ids=ids[0], col_ids=ids[1], tile=16)
    assert lse.dtype == torch.float32 and torch.isfinite(lse).all()
    assert torch.allclose(lse, reference, rtol=2e-2, atol=2e-2)
    # the bf16 inputs are computed in float32: exactly the float32 result on the rounded inputs
    rounded = tiled_logsumexp(
        x.detach().float(), y.detach().float(), 10.0, row_ids=ids[0], col_ids=ids[1], tile=16
    )
    assert torch.allclose(lse, rounded, rtol=1e-6, atol=1e-6)
    assert torch.equal(same, reference)  # float32 inputs: autocast is disabled inside
    lse.sum().backward()
    assert x.grad is not None and x.grad.dtype == torch.bfloat16 and torch.isfinite(x.grad).all()
    assert y.grad is not None and torch.isfinite(y.grad).all()


def test_memory_is_bounded_by_the_tile(monkeypatch: pytest.MonkeyPatch) -> None:
    """No intermediate larger than tile_r x tile_c: every matmul in the PyTorch path
    (forward and backward) is checked through a wrapped torch.Tensor.__matmul__ and addmm_."""
    a, b = _inputs(50, 70, 4)
    a.requires_grad_()
    largest = [0]
    matmul = torch.Tensor.__matmul__
    addmm_ = torch.Tensor.addmm_

    def spy_matmul(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = matmul(x, y)
        largest[0] = max(largest[0], out.numel())
        return out

    def spy_addmm(x: torch.Tensor, p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        largest[0] = max(largest[0], p.numel(), q.numel())
        return addmm_(x, p, q)

    monkeypatch.setattr(torch.Tensor, "__matmul__", spy_matmul)
    monkeypatch.setattr(torch.Tensor, "addmm_", spy_addmm)
    tiled_logsumexp(a, b, 3.0, tile=(8, 12)).sum().backward()
    assert 0 < largest[0] <= 8 * 12  # never the 50 x 70 matrix


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda a, b: tiled_logsumexp(a, b[:, :3], 1.0), "feature size"),
        (lambda a, b: tiled_logsumexp(a, b.float(), 1.0), "dtype|float"),
        (lambda a, b: tiled_logsumexp(a[0], b, 1.0), "2-D"),
        (lambda a, b: tiled_logsumexp(a.long(), b.long(), 1.0), "floating"),
        (lambda a, b: tiled_logsumexp(a, b, 1.0, row_ids=torch.arange(6)), "together"),
        (
            lambda a, b: tiled_logsumexp(
                a, b, 1.0, row_ids=torch.arange(6), col_ids=torch.arange(8)
            ),
            r"col_ids must have shape \(7,\)",
        ),
        (
            lambda a, b: tiled_logsumexp(
                a, b, 1.0, row_ids=torch.arange(6.0), col_ids=torch.arange(7.0)
            ),
            "integer",
        ),
        (lambda a, b: tiled_logsumexp(a, b, torch.ones(5, dtype=torch.float64)), "scale"),
        (lambda a, b: tiled_logsumexp(a, b, "1"), "scale"),
        (lambda a, b: tiled_logsumexp(a, b, 1.0, tile=0), "tile"),
        (lambda a, b: tiled_logsumexp(a, b, 1.0, tile=(4, 0)), "tile"),
        (lambda a, b: tiled_logsumexp(a, b, 1.0, backend="trition"), "did you mean 'triton'"),
        (lambda a, b: tiled_logsumexp(a, b, 1.0, backend="triton"), "triton"),
    ],
    ids=[
        "feature-size",
        "dtype",
        "1-d",
        "integer-input",
        "ids-alone",
        "ids-length",
        "float-ids",
        "scale-shape",
        "scale-type",
        "tile-zero",
        "tile-pair",
        "backend-typo",
        "triton-on-cpu",
    ],
)
def test_bad_arguments(call: Callable[..., Any], match: str) -> None:
    a, b = _inputs(6, 7, 4)
    with pytest.raises(ValueError, match=match):
        call(a, b)


def test_cpu_never_asks_for_triton(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse() -> None:
        raise AssertionError("the Triton module was looked up for CPU tensors")

    monkeypatch.setattr(tiled, "_triton", refuse)
    a, b = _inputs(6, 7, 4)
    assert torch.allclose(tiled_logsumexp(a, b, 2.0), dense_lse(a, b, 2.0))


# --------------------------------------------------------------------------------------------
# the losses: engine="tiled" against engine="dense"
# --------------------------------------------------------------------------------------------

LABELS = [0, 1, 2, 0, 1, 2, 3, 3, 0, 1, 1, 2, 4]


def _labels(n: int) -> torch.Tensor:
    return torch.tensor((LABELS * 2)[:n])


def _mask(n: int) -> torch.Tensor:
    mask = torch.rand(n, n, generator=torch.Generator().manual_seed(n)) < 0.4
    mask[0] = False  # an instance without positives
    return mask


# (name, create() keywords, inputs(n) -> call keywords, two views only)
LOSSES: list[tuple[str, dict[str, Any], Callable[[int], dict[str, Any]], bool]] = [
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


@pytest.fixture
def small_tiles(monkeypatch: pytest.MonkeyPatch) -> None:
    """4 x 7 tiles: every batch here spans several tiles with ragged last ones."""
    monkeypatch.setattr(tiled, "TILE_ROWS", 4)
    monkeypatch.setattr(tiled, "TILE_COLS", 7)


def _create(name: str, kwargs: dict[str, Any], tau: float, engine: str) -> torch.nn.Module:
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


@pytest.mark.usefixtures("small_tiles")
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
@pytest.mark.parametrize("case", CASES, ids=lambda c: "N{}-M{}-D{}-t{}".format(*c))
@pytest.mark.parametrize(("name", "kwargs", "inputs", "two_view"), LOSSES, ids=LOSS_IDS)
def test_tiled_loss_matches_dense(
    name: str,
    kwargs: dict[str, Any],
    inputs: Callable[[int], dict[str, Any]],
    two_view: bool,
    case: tuple[int, int, int, float],
    dtype: torch.dtype,
) -> None:
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
    for engine in ("dense", "tiled"):
        loss = _create(name, kwargs, tau, engine).train()
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


@pytest.mark.usefixtures("small_tiles")
@pytest.mark.parametrize("window", [(0, 3), (2, 4), (5, 6), (0, 11)], ids=str)
@pytest.mark.parametrize(("name", "kwargs", "inputs", "two_view"), LOCAL, ids=LOCAL_IDS)
def test_tiled_local_anchors_match_dense(
    name: str,
    kwargs: dict[str, Any],
    inputs: Callable[[int], dict[str, Any]],
    two_view: bool,
    window: tuple[int, int],
) -> None:
    """``compute_local`` (one rank's anchors against every global candidate, masks by
    global ids), tiled against dense, value and gradient."""
    n, m, d, tau = 11, 2 if two_view else 3, 5, 0.1
    offset, count = window
    z0 = F.normalize(
        torch.randn(n, m, d, generator=torch.Generator().manual_seed(9), dtype=torch.float64),
        dim=-1,
    )
    call = {"labels": None, "index": None, **inputs(n)}
    out = {}
    for engine in ("dense", "tiled"):
        loss = _create(name, kwargs, tau, engine).double()
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
    calls = [0]
    for fn in (tiled._TiledLSE, tiled._TiledLSERowsCols):

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
    assert loss.engine == "auto"
    loss(views, **spec[2](n))
    assert calls[0] == 0  # the default threshold is far above these sizes: dense
    monkeypatch.setattr(tiled, "TILED_MIN_ENTRIES", 0)
    loss(views, **spec[2](n))
    assert calls[0] > 0
    for engine, expected in (("dense", 0), ("tiled", 1)):
        calls[0] = 0
        _create(name, spec[1], 0.1, engine)(views, **spec[2](n))
        assert (calls[0] > 0) == bool(expected), engine


def test_auto_threshold_is_strict(monkeypatch: pytest.MonkeyPatch) -> None:
    """InfoNCE on N=8, M=2 builds 16 x 16 = 256 logits: tiled above 255, dense at 256."""
    calls = _count_tiled_calls(monkeypatch)
    views = torch.randn(8, 2, 4)
    loss = manyview.create("loss", "infonce")
    monkeypatch.setattr(tiled, "TILED_MIN_ENTRIES", 256)
    loss(views)
    assert calls[0] == 0
    monkeypatch.setattr(tiled, "TILED_MIN_ENTRIES", 255)
    loss(views)
    assert calls[0] == 1


def test_default_threshold_and_tiles() -> None:
    assert tiled.TILED_MIN_ENTRIES >= 1024 * 1024
    assert tiled.TILE_ROWS * tiled.TILE_COLS <= 4096 * 4096
    assert tiled.use_tiled("auto", tiled.TILED_MIN_ENTRIES + 1)
    assert not tiled.use_tiled("auto", tiled.TILED_MIN_ENTRIES)
    assert tiled.use_tiled("tiled", 1) and not tiled.use_tiled("dense", 10**12)


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
    assert manyview.create("loss", "pwe", base="infonce", engine="tiled").base.engine == "tiled"


def test_supcon_in_with_mask_stays_dense_under_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_tiled_calls(monkeypatch)
    monkeypatch.setattr(tiled, "TILED_MIN_ENTRIES", 0)
    views = torch.randn(6, 2, 4, dtype=torch.float64)
    mask = _mask(6)
    auto = manyview.create("loss", "supcon", variant="in")
    dense = manyview.create("loss", "supcon", variant="in", engine="dense")
    assert torch.equal(auto(views, mask=mask), dense(views, mask=mask))
    assert calls[0] == 0
    with pytest.raises(ValueError, match="variant='in' with mask"):
        manyview.create("loss", "supcon", variant="in", engine="tiled")(views, mask=mask)


def test_clip_learnable_scale_gets_its_gradient(small_tiles: None) -> None:
    views = torch.randn(9, 2, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    grads = {}
    for engine in ("dense", "tiled"):
        loss = manyview.create("loss", "clip", learnable=True, engine=engine).double()
        loss(views).backward()
        grads[engine] = loss.logit_scale.grad
    assert grads["tiled"] is not None and grads["dense"] is not None
    assert grads["dense"].abs() > 0
    assert torch.allclose(grads["tiled"], grads["dense"], rtol=1e-12, atol=1e-14)


def test_large_batch_tiles_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch whose dense logits exceed the threshold is tiled with the default engine and
    agrees with the dense engine (a lowered threshold keeps the test small)."""
    monkeypatch.setattr(tiled, "TILED_MIN_ENTRIES", 64 * 64)
    calls = _count_tiled_calls(monkeypatch)
    views = torch.randn(40, 2, 16, generator=torch.Generator().manual_seed(2))
    tiled_value = manyview.create("loss", "infonce")(views)
    assert calls[0] == 1
    dense_value = manyview.create("loss", "infonce", engine="dense")(views)
    assert math.isclose(tiled_value.item(), dense_value.item(), rel_tol=1e-6)


def _fake_kernels(shift: float, calls: dict[str, int], ignore_ids: bool = False) -> Any:
    """Stand-in kernels: the PyTorch tiles, with ``shift`` added to the forward's lse (and,
    with ``ignore_ids``, no exclusions: the bug of a kernel that drops its mask)."""
    from types import SimpleNamespace

    def forward(a, b, scale, rid, cid):
        calls["forward"] += 1
        if ignore_ids:
            rid = cid = None
        return tiled.torch_lse_forward(a, b, scale, rid, cid, 16, 16) + shift

    def backward(a, b, scale, rid, cid, lse, grad):
        calls["backward"] += 1
        if ignore_ids:
            rid = cid = None
        return tiled.torch_lse_backward(a, b, scale, rid, cid, lse, grad, 16, 16)

    return SimpleNamespace(
        takes=lambda t: True, triton_lse_forward=forward, triton_lse_backward=backward
    )


@pytest.fixture
def fresh_kernel_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tiled, "TRITON_FAILURES", [])
    monkeypatch.setattr(tiled, "_KERNEL_CHECKS", {})
    monkeypatch.setattr(tiled, "_kernel_device", lambda t: True)


@pytest.mark.usefixtures("fresh_kernel_state")
def test_kernels_that_pass_the_self_check_are_used(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"forward": 0, "backward": 0}
    monkeypatch.setattr(tiled, "_triton", lambda: _fake_kernels(0.0, calls))
    a = torch.randn(40, 8, requires_grad=True)
    b = torch.randn(30, 8)
    ids = (torch.arange(40) % 7, torch.arange(30) % 7)
    for _ in range(2):
        tiled_logsumexp(a, b, 2.0, row_ids=ids[0], col_ids=ids[1]).sum().backward()
    # the check ran once (one forward and one backward), then two losses used the kernels
    assert calls == {"forward": 3, "backward": 3}
    assert list(tiled._KERNEL_CHECKS.values()) == [True]
    tiled_logsumexp(a, b, 2.0).sum().backward()  # no ids: a second configuration, checked
    assert calls == {"forward": 5, "backward": 5}
    assert tiled.TRITON_FAILURES == []


@pytest.mark.usefixtures("fresh_kernel_state")
def test_kernels_with_wrong_results_are_never_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """A kernel that runs but computes something else (say, a GPU where a block config
    misbehaves) must not train a model: the self-check warns and the PyTorch tiles take over."""
    calls = {"forward": 0, "backward": 0}
    monkeypatch.setattr(tiled, "_triton", lambda: _fake_kernels(0.5, calls))
    a, b = torch.randn(40, 8), torch.randn(30, 8)
    want = torch.logsumexp(2.0 * a @ b.T, dim=1)
    with pytest.warns(RuntimeWarning, match="self-check.*differ from the PyTorch tiles"):
        got = tiled_logsumexp(a, b, 2.0)
    torch.testing.assert_close(got, want)
    assert calls["forward"] == 1  # the check's call only
    assert "differ" in tiled.TRITON_FAILURES[0]
    tiled_logsumexp(a, b, 2.0)  # no second check, no second warning
    assert calls["forward"] == 1


@pytest.mark.usefixtures("fresh_kernel_state")
def test_the_self_check_catches_kernels_that_drop_the_exclusions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = {"forward": 0, "backward": 0}
    monkeypatch.setattr(tiled, "_triton", lambda: _fake_kernels(0.0, calls, ignore_ids=True))
    a, b = torch.randn(40, 8), torch.randn(30, 8)
    assert tiled.kernels_agree(tiled._triton(), torch.float32, 8, False, a.device)  # no ids
    assert not tiled._KERNEL_CHECKS.get((torch.float32, 8, True, tiled.tf32_enabled(), "cpu"))
    ids = (torch.arange(40) % 5, torch.arange(30) % 5)
    with pytest.warns(RuntimeWarning, match="differ"):
        got = tiled_logsumexp(a, b, 2.0, row_ids=ids[0], col_ids=ids[1])
    want = tiled.torch_lse_forward(a, b, torch.full((40,), 2.0), *ids, 64, 64)
    torch.testing.assert_close(got, want)


def test_a_failing_triton_kernel_falls_back_to_the_pytorch_tiles_once(monkeypatch):
    """backend="auto" on CUDA wraps the kernels: a build/launch failure warns once and the
    PyTorch tiles take over, with the same result; an out-of-memory error propagates."""
    from manyview.losses.engine import tiles as tiled

    monkeypatch.setattr(tiled, "TRITON_FAILURES", [])
    calls = {"kernel": 0, "reference": 0}

    def broken(*args):
        calls["kernel"] += 1
        raise RuntimeError("CompilationError: triton could not build the kernel\nmore lines")

    def reference(*args):
        calls["reference"] += 1
        return sum(args)

    run = tiled.with_fallback(broken, reference)
    with pytest.warns(RuntimeWarning, match="Triton kernels failed.*could not build the kernel"):
        assert run(1, 2) == 3
    assert run(3, 4) == 7  # no second try, no second warning
    assert calls == {"kernel": 1, "reference": 2}
    assert "could not build" in tiled.TRITON_FAILURES[0]

    monkeypatch.setattr(tiled, "TRITON_FAILURES", [])

    def out_of_memory(*args):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(torch.cuda.OutOfMemoryError):
        tiled.with_fallback(out_of_memory, reference)(1)
    assert tiled.TRITON_FAILURES == []


@pytest.mark.parametrize(
    ("rows", "cols", "tile", "learnable"),
    [(37, 53, (16, 8), True), (8, 8, 64, False), (40, 24, (7, 5), True)],
)
def test_rows_and_columns_in_one_pass_match_dense(rows, cols, tile, learnable) -> None:
    """tiled_logsumexp_rows_cols: both LSEs and every gradient (a, b, the 0-dim scale) equal
    the dense logsumexps in float64, with ragged tiles and R != C."""
    g = torch.Generator().manual_seed(rows + cols)
    a = torch.randn(rows, 12, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(cols, 12, generator=g, dtype=torch.float64, requires_grad=True)
    scale = torch.tensor(3.0, dtype=torch.float64, requires_grad=learnable)
    gr = torch.randn(rows, generator=g, dtype=torch.float64)
    gc = torch.randn(cols, generator=g, dtype=torch.float64)
    row, col = tiled.tiled_logsumexp_rows_cols(a, b, scale, tile=tile)
    x = scale * a @ b.T
    torch.testing.assert_close(row, x.logsumexp(1), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(col, x.logsumexp(0), rtol=1e-12, atol=1e-12)
    inputs = [a, b] + ([scale] if learnable else [])
    got = torch.autograd.grad((row * gr).sum() + (col * gc).sum(), inputs)
    x = scale * a @ b.T
    want = torch.autograd.grad((x.logsumexp(1) * gr).sum() + (x.logsumexp(0) * gc).sum(), inputs)
    for u, w in zip(got, want, strict=True):
        torch.testing.assert_close(u, w, rtol=1e-10, atol=1e-12)


def test_rows_and_columns_float32_and_gradcheck() -> None:
    g = torch.Generator().manual_seed(5)
    a = torch.randn(9, 5, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(6, 5, generator=g, dtype=torch.float64, requires_grad=True)
    scale = torch.tensor(1.7, dtype=torch.float64, requires_grad=True)

    def both(a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        row, col = tiled.tiled_logsumexp_rows_cols(a, b, scale, tile=(4, 4))
        return torch.cat([row, col])

    assert torch.autograd.gradcheck(both, (a, b, scale))
    a32, b32 = a.detach().float() * 4, b.detach().float() * 4
    row, col = tiled.tiled_logsumexp_rows_cols(a32, b32, 2.5, tile=(4, 3))
    x = 2.5 * a32.double() @ b32.double().T
    assert torch.allclose(row.double(), x.logsumexp(1), rtol=1e-5)
    assert torch.allclose(col.double(), x.logsumexp(0), rtol=1e-5)
    with pytest.raises(ValueError, match="0-dim tensor"):
        tiled.tiled_logsumexp_rows_cols(a32, b32, torch.ones(9))
    with pytest.raises(ValueError, match="same feature size"):
        tiled.tiled_logsumexp_rows_cols(a32, b32[:, :3], 1.0)


def test_clip_tiles_from_an_eighth_of_the_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    """CLIP's one-walk tiled form wins earlier: auto tiles above TILED_MIN_ENTRIES / 8, so
    from N = 725 with the default threshold."""
    calls = _count_tiled_calls(monkeypatch)
    views = torch.randn(16, 2, 4)  # 16 x 16 = 256 logits
    loss = manyview.create("loss", "clip")
    monkeypatch.setattr(tiled, "TILED_MIN_ENTRIES", 8 * 256)
    loss(views)
    assert calls[0] == 0
    monkeypatch.setattr(tiled, "TILED_MIN_ENTRIES", 8 * 255)
    loss(views)
    assert calls[0] == 1
    monkeypatch.setattr(tiled, "TILED_MIN_ENTRIES", 2048 * 2048)  # the default
    assert not tiled.use_tiled("auto", 724**2, threshold_factor=clip.TILED_FACTOR)
    assert tiled.use_tiled("auto", 725**2, threshold_factor=clip.TILED_FACTOR)
