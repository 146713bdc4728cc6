"""Naive float64 references of UniSD's agreement weights and token reduction.

Written from the formulas of UniSD (Jin et al. 2026, arXiv 2605.06597; official code
``Ahren09/UniSD``, ``src/trainers/unisd_trainer.py``: ``_agreement_weights_token``,
``_agreement_weights_sequence`` and the loss's reduction): explicit Python loops over
teachers, sequences and tokens on Python floats. Nothing is vectorised and nothing calls
the library. Nested lists (or tensors, converted) come in, Python floats (or nested lists)
come out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch


def as_lists(x):
    """A tensor as nested float64 Python lists; lists (and ``None``) as they are."""
    if isinstance(x, torch.Tensor):
        return x.detach().to(torch.float64).tolist() if x.is_floating_point() else x.tolist()
    return x


def quantile(values: Sequence[float], p: float) -> float:
    """The p-quantile with linear interpolation between the sorted values."""
    v = sorted(values)
    pos = p * (len(v) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def variance(xs: Sequence[float], *, unbiased: bool) -> float:
    mean = math.fsum(xs) / len(xs)
    return math.fsum((x - mean) ** 2 for x in xs) / (len(xs) - (1 if unbiased else 0))


def token_agreement(scores, mask=None, *, gamma: float = 1.0, q: float = 0.95) -> list:
    """UniSD's token-level weights: d the unbiased variance over the K teachers,
    scale = max(q-quantile of the valid d, 1e-6), w = max(0.01, 1/(1 + γ min(d/scale, 10)));
    all ones when no token is valid."""
    s, m = as_lists(scores), as_lists(mask)
    k, n, t = len(s), len(s[0]), len(s[0][0])
    d = [
        [variance([s[i][b][j] for i in range(k)], unbiased=True) for j in range(t)]
        for b in range(n)
    ]
    valid = [d[b][j] for b in range(n) for j in range(t) if m is None or m[b][j]]
    if not valid:
        return [[1.0] * t for _ in range(n)]
    scale = max(quantile(valid, q), 1e-6)
    return [
        [max(0.01, 1.0 / (1.0 + gamma * min(d[b][j] / scale, 10.0))) for j in range(t)]
        for b in range(n)
    ]


def sequence_agreement(scores, mask=None, *, gamma: float = 1.0) -> list:
    """UniSD's sequence-level weights: the biased variance over the teachers of each
    teacher's mean score over the valid tokens, w = max(1e-6, exp(−γ d)), one per sequence."""
    s, m = as_lists(scores), as_lists(mask)
    k, n, t = len(s), len(s[0]), len(s[0][0])
    out = []
    for b in range(n):
        keep = [j for j in range(t) if m is None or m[b][j]]
        count = max(len(keep), 1)
        means = [math.fsum(s[i][b][j] for j in keep) / count for i in range(k)]
        out.append(max(1e-6, math.exp(-gamma * variance(means, unbiased=False))))
    return out


def reduce_tokens(values, mask=None, weights=None) -> float:
    """UniSD's reduction of per-token values: per sequence Σ m w ℓ / max(1, Σ m w), then the
    mean over all sequences (an all-masked one counts as 0). ``weights`` (N, T) per token;
    or (N,) per sequence, u, which weight that mean instead: Σ_b u_b L_b / Σ_b u_b (manyview's
    extension; 0 when every u_b is 0)."""
    v, m, w = as_lists(values), as_lists(mask), as_lists(weights)
    token_w = w is not None and isinstance(w[0], list)
    total = total_u = 0.0
    for b in range(len(v)):
        num = den = 0.0
        for j in range(len(v[b])):
            mb = 1.0 if m is None else float(m[b][j])
            wb = w[b][j] if token_w else 1.0
            num += mb * wb * v[b][j]
            den += mb * wb
        u = w[b] if (w is not None and not token_w) else 1.0
        total += u * num / max(1.0, den)
        total_u += u
    return total / total_u if total_u > 0 else 0.0


def numeric_grad(f: Callable[[torch.Tensor], float], x: torch.Tensor, h: float = 1e-6) -> list:
    """Central finite differences of the Python-float function ``f`` at ``x`` (float64),
    as a flat list over ``x``'s entries."""
    x = x.detach().to(torch.float64).clone()
    flat = x.view(-1)
    grads = []
    for i in range(flat.numel()):
        keep = flat[i].item()
        flat[i] = keep + h
        up = f(x)
        flat[i] = keep - h
        down = f(x)
        flat[i] = keep
        grads.append((up - down) / (2 * h))
    return grads
