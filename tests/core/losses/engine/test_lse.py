"""The engine's row log-sum-exps (``manyview.losses.engine.lse`` and ``.dense``, the PyTorch
tiles of ``.tiles``) against a dense float64 computation written here.

- :func:`tiled_logsumexp` and :func:`dense_logsumexp`: value and the gradients in a, b and
  every kind of scale; with and without exclusion ids; rows with every entry excluded;
  ragged last tiles; rectangular inputs; float32 and bf16 (autocast) precision;
  ``gradcheck``; the tiles bound every intermediate; argument checks.
- :func:`tiled_logsumexp_rows_cols` (CLIP's one walk): both LSEs and every gradient;
  :func:`tiled_softmax_moment` (iSogCLR's temperature gradient).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from manyview.losses.engine import (
    dense_logsumexp,
    tiled_logsumexp,
    tiled_logsumexp_rows_cols,
    tiled_softmax_moment,
)

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
    return dense_logsumexp(a, b, scale, **kw)


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


# --------------------------------------------------------------------------------------------
# rows and columns in one walk (CLIP)
# --------------------------------------------------------------------------------------------


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
    row, col = tiled_logsumexp_rows_cols(a, b, scale, tile=tile)
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
        row, col = tiled_logsumexp_rows_cols(a, b, scale, tile=(4, 4))
        return torch.cat([row, col])

    assert torch.autograd.gradcheck(both, (a, b, scale))
    a32, b32 = a.detach().float() * 4, b.detach().float() * 4
    row, col = tiled_logsumexp_rows_cols(a32, b32, 2.5, tile=(4, 3))
    x = 2.5 * a32.double() @ b32.double().T
    assert torch.allclose(row.double(), x.logsumexp(1), rtol=1e-5)
    assert torch.allclose(col.double(), x.logsumexp(0), rtol=1e-5)
    with pytest.raises(ValueError, match="0-dim tensor"):
        tiled_logsumexp_rows_cols(a32, b32, torch.ones(9))
    with pytest.raises(ValueError, match="same feature size"):
        tiled_logsumexp_rows_cols(a32, b32[:, :3], 1.0)


# --------------------------------------------------------------------------------------------
# the softmax moment (iSogCLR)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ids", ["none", "self", "random"])
def test_softmax_moment_matches_dense_float64(ids: str) -> None:
    """tiled_softmax_moment: Σ_j softmax_ij s_ij over the kept entries (0 on a row with none),
    the derivative of the row LSE in its scale."""
    r, c = 23, 31
    a, b = _inputs(r, c, 5, seed=7)
    scale = _scale("rows", r).detach()
    row_ids, col_ids = _ids(ids, r, c)
    lse = tiled_logsumexp(a, b, scale, row_ids=row_ids, col_ids=col_ids, tile=(4, 7))
    got = tiled_softmax_moment(a, b, scale, lse, row_ids=row_ids, col_ids=col_ids, tile=(4, 7))
    s = a @ b.T
    logits = scale[:, None] * s
    if row_ids is not None and col_ids is not None:
        logits = logits.masked_fill(row_ids[:, None] == col_ids[None, :], float("-inf"))
    want = (torch.softmax(logits, dim=1).nan_to_num(0.0) * s).sum(dim=1)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match=r"lse must have shape \(23,\)"):
        tiled_softmax_moment(a, b, scale, lse[:3])
