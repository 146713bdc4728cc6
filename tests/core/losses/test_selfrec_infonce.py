"""XSimGCL's contrastive term against a naive float64 loop of SELFRec's one-directional
InfoNCE (Yu et al., TKDE 2023; official code ``Coder-Yu/SELFRec``, ``util/loss_torch.py``):
``clip`` is its symmetrised form, the loss the XSimGCL example of docs/losses.md uses."""

from __future__ import annotations

import math

import torch

import manyview

TAU = 0.15  # XSimGCL's tau in SELFRec's configuration


def selfrec_infonce(u: torch.Tensor, v: torch.Tensor, tau: float) -> float:
    """−(1/N) Σ_i log softmax_j(<û_i, v̂_j>/τ)_i: view u's rows against view v's, one
    direction, cosine similarities (SELFRec's ``b_cos=True``)."""
    a, b = u.tolist(), v.tolist()

    def unit(x: list[float]) -> list[float]:
        norm = math.sqrt(math.fsum(t * t for t in x))
        return [t / norm for t in x]

    a, b = [unit(x) for x in a], [unit(x) for x in b]
    n = len(a)
    total = 0.0
    for i in range(n):
        row = [math.fsum(p * q for p, q in zip(a[i], b[j], strict=True)) / tau for j in range(n)]
        top = max(row)
        log_z = top + math.log(math.fsum(math.exp(x - top) for x in row))
        total += log_z - row[i]
    return total / n


def _views(n: int = 12, d: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two XSimGCL views of the same embeddings (``embedding_noise``, ε = 0.2)."""
    g = torch.Generator().manual_seed(seed)
    e = torch.randn(n, d, generator=g, dtype=torch.float64)
    noise = manyview.create("view", "embedding_noise", eps=0.2)
    return noise(e, generator=g), noise(e, generator=g)


def test_clip_is_selfrecs_infonce_averaged_over_the_two_directions():
    u, v = _views()
    got = manyview.create("loss", "clip", temperature=TAU)([u, v])
    want = 0.5 * (selfrec_infonce(u, v, TAU) + selfrec_infonce(v, u, TAU))
    assert got.dtype == torch.float64
    assert math.isclose(got.item(), want, rel_tol=1e-12), (got.item(), want)


def test_clip_equals_the_one_directional_term_on_a_symmetric_similarity_matrix():
    # the two directions coincide when <û_i, v̂_j> = <û_j, v̂_i>, e.g. identical views
    u, _ = _views(seed=1)
    got = manyview.create("loss", "clip", temperature=TAU)([u, u.clone()])
    assert math.isclose(got.item(), selfrec_infonce(u, u, TAU), rel_tol=1e-12)


def test_infonce_is_a_different_loss():
    # NT-Xent adds the other view's own rows as negatives (2N − 2 instead of N − 1)
    u, v = _views(seed=2)
    ntxent = manyview.create("loss", "infonce", temperature=TAU)([u, v]).item()
    one_way = selfrec_infonce(u, v, TAU)
    assert abs(ntxent - one_way) > 0.1 * one_way
