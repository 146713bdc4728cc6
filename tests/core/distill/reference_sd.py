"""Naive float64 references for DINO, Borup self-distillation, SLA and MI-alpha.

Written from the formulas in ``docs/distillation.md`` (its ``mi_alpha`` section, with the
leave-one-out :math:`m(t; s_{1:K})` of Poole et al.'s code, and its ``self_distill_gt``, ``sla``
and ``dino`` sections): explicit Python loops with ``math.exp`` / ``math.log`` on Python
floats. Nothing is vectorised and nothing calls the library. Tensors come in, Python floats
come out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch


def _list(x: torch.Tensor) -> list:
    return x.detach().to(torch.float64).tolist()


def lse(xs: Sequence[float]) -> float:
    top = max(xs)
    return top + math.log(math.fsum(math.exp(x - top) for x in xs))


def softmax(xs: Sequence[float]) -> list[float]:
    z = lse(xs)
    return [math.exp(x - z) for x in xs]


def log_softmax(xs: Sequence[float]) -> list[float]:
    z = lse(xs)
    return [x - z for x in xs]


def mean(xs: Sequence[float]) -> float:
    return math.fsum(xs) / len(xs)


# --- DINO -----------------------------------------------------------------------------------


def dino(
    student: torch.Tensor,
    teacher: torch.Tensor,
    center: torch.Tensor,
    tau_s: float,
    tau_t: float,
) -> float:
    """Mean over pairs (g, v != g) of the batch mean of H(P_t(g), P_s(v)).

    ``student`` (N, V, K), ``teacher`` (N, G, K), ``center`` (K,)."""
    s, t, c = _list(student), _list(teacher), _list(center)
    n, v, g = len(s), len(s[0]), len(t[0])
    terms = []
    for a in range(g):
        for b in range(v):
            if b == a:
                continue
            per_sample = []
            for i in range(n):
                pt = softmax([(t[i][a][k] - c[k]) / tau_t for k in range(len(c))])
                ls = log_softmax([x / tau_s for x in s[i][b]])
                per_sample.append(-math.fsum(p * q for p, q in zip(pt, ls, strict=True)))
            terms.append(mean(per_sample))
    return mean(terms)


def dino_center(teacher: torch.Tensor, center: torch.Tensor, momentum: float) -> list[float]:
    """``m c + (1 - m) * mean over batch and crops`` of the teacher outputs."""
    t, c = _list(teacher), _list(center)
    rows = [row for sample in t for row in sample]
    return [momentum * c[k] + (1 - momentum) * mean([r[k] for r in rows]) for k in range(len(c))]


# --- Borup & Andersen -----------------------------------------------------------------------


def self_distill_gt(
    z_s: torch.Tensor, z_t: torch.Tensor | None, labels: torch.Tensor | None, alpha: float
) -> float:
    """alpha * MSE(softmax(z_s), onehot(y)) + (1 - alpha) * MSE(softmax(z_s), softmax(z_t)),
    MSE the mean over the N*C entries."""
    s = _list(z_s)
    n, c = len(s), len(s[0])
    total = 0.0
    if alpha > 0:
        y = labels.tolist()
        gt = [
            (softmax(s[i])[k] - (1.0 if k == y[i] else 0.0)) ** 2
            for i in range(n)
            for k in range(c)
        ]
        total += alpha * mean(gt)
    if alpha < 1:
        t = _list(z_t)
        d = [(softmax(s[i])[k] - softmax(t[i])[k]) ** 2 for i in range(n) for k in range(c)]
        total += (1 - alpha) * mean(d)
    return total


# --- SLA ------------------------------------------------------------------------------------


def sla_aggregate(joint: torch.Tensor, m: int) -> list[list[float]]:
    """z_agg[i][c] = (1/M) sum_j joint[i*M + j][c*M + j]."""
    z = _list(joint)
    n, c = len(z) // m, len(z[0]) // m
    return [[mean([z[i * m + j][k * m + j] for j in range(m)]) for k in range(c)] for i in range(n)]


def sla(
    joint: torch.Tensor,
    labels: torch.Tensor,
    m: int,
    head: torch.Tensor | None = None,
    temperature: float = 1.0,
) -> float:
    """Mean CE over the N*M rows against y*M + j, plus CE(head, y) + T^2 KL(agg/T || head/T)
    (batch mean) when ``head`` (N, C) is given."""
    z, y = _list(joint), labels.tolist()
    n = len(z) // m
    ce = []
    for i in range(n):
        for j in range(m):
            row = z[i * m + j]
            ce.append(lse(row) - row[y[i] * m + j])
    total = mean(ce)
    if head is not None:
        h = _list(head)
        agg = sla_aggregate(joint, m)
        total += mean([lse(h[i]) - h[i][y[i]] for i in range(n)])
        kls = []
        for i in range(n):
            lp = log_softmax([a / temperature for a in agg[i]])
            lq = log_softmax([b / temperature for b in h[i]])
            kls.append(math.fsum(math.exp(a) * (a - b) for a, b in zip(lp, lq, strict=True)))
        total += temperature**2 * mean(kls)
    return total


# --- MI-alpha -------------------------------------------------------------------------------


def mi_alpha(scores: torch.Tensor, log_baseline: torch.Tensor | None, alpha: float) -> float:
    """I_alpha with scores[i][j] = f(s_j, t_i) and psi[i] = log q(t_i).

    m(t_i; s) leaves one student out: L[i][j] = log (1/(N-1)) sum_{k != j} exp(scores[i][k]);
    denominator d[i][j] = alpha * exp(L[i][j]) + (1 - alpha) * exp(psi[i]) (in log space);
    I = 1 + mean_{i != j}(scores[i][i] - log d[i][j]) - mean_{i != j} exp(scores[i][j] - log d[i][i]).
    """
    f = _list(scores)
    n = len(f)
    psi = _list(log_baseline) if log_baseline is not None else [0.0] * n

    def log_denominator(i: int, j: int) -> float:
        parts = []
        if alpha > 0:
            loo = lse([f[i][k] for k in range(n) if k != j]) - math.log(n - 1)
            parts.append(math.log(alpha) + loo)
        if alpha < 1:
            parts.append(math.log(1 - alpha) + psi[i])
        return lse(parts)

    pairs = [(i, j) for i in range(n) for j in range(n) if i != j]
    joint = mean([f[i][i] - log_denominator(i, j) for i, j in pairs])
    marg = mean([math.exp(f[i][j] - log_denominator(i, i)) for i, j in pairs])
    return 1.0 + joint - marg


# --- a plain Adam for the tiny training loops -----------------------------------------------


class Adam:
    """Adam (Kingma & Ba) without bias-correction shortcuts, written out here because the
    first ``torch.optim`` step imports ``torch._dynamo`` — seconds when Python cannot cache
    bytecode — and these loops are tiny."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.betas, self.eps, self.t = lr, betas, eps, 0
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.t += 1
        b1, b2 = self.betas
        for p, m, v in zip(self.params, self.m, self.v, strict=True):
            if p.grad is None:
                continue
            m.mul_(b1).add_(p.grad, alpha=1 - b1)
            v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
            m_hat = m / (1 - b1**self.t)
            v_hat = v / (1 - b2**self.t)
            p.sub_(self.lr * m_hat / (v_hat.sqrt() + self.eps))
