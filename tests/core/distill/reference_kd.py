"""Naive float64 references of the distillation losses in ``manyview.distill``.

Written from the formulas in ``docs/distillation.md`` (its sections on ``kd``, ``feature``,
``token_contrast``, ``rkd``, ``crd``, ``score_kd`` (DiSCo) and ``divergence_clip``): explicit
Python loops over rows, tokens, classes, pairs and triplets, with ``math.exp`` / ``math.log`` on
Python floats. Nothing is vectorised and nothing calls the library. Tensors come in, Python
floats (or nested lists) come out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .reference_unisd import quantile, reduce_tokens


def _list(x: torch.Tensor | None) -> list | None:
    return None if x is None else x.detach().to(torch.float64).tolist()


def lse(xs: Sequence[float]) -> float:
    top = max(xs)
    return top + math.log(math.fsum(math.exp(x - top) for x in xs))


def log_softmax(xs: Sequence[float]) -> list[float]:
    z = lse(xs)
    return [x - z for x in xs]


def kl_logp(log_p: Sequence[float], log_q: Sequence[float]) -> float:
    """KL(p || q) from log-probabilities."""
    return math.fsum(math.exp(lp) * (lp - lq) for lp, lq in zip(log_p, log_q, strict=True))


def divergence_row(t: Sequence[float], s: Sequence[float], kind: str, alpha: float) -> float:
    """The per-row divergence between softmax(t) (teacher) and softmax(s) (student)."""
    lt, ls = log_softmax(t), log_softmax(s)
    if kind == "forward" or (kind == "jsd" and alpha == 0):
        return kl_logp(lt, ls)
    if kind == "reverse" or (kind == "jsd" and alpha == 1):
        return kl_logp(ls, lt)
    pt = [math.exp(x) for x in lt]
    ps = [math.exp(x) for x in ls]
    lm = [math.log((1 - alpha) * a + alpha * b) for a, b in zip(ps, pt, strict=True)]
    return alpha * kl_logp(lt, lm) + (1 - alpha) * kl_logp(ls, lm)


def reduce(values: list, mask: list | None = None, weights: list | None = None) -> float:
    """UniSD's reduction: per row Σ m w ℓ / Σ m w; per token Σ m w ℓ / max(1, Σ m w) per
    sequence, then the mean over all sequences (``reference_unisd.reduce_tokens``)."""
    n = len(values)
    if not isinstance(values[0], list):  # rows
        num = den = 0.0
        for i in range(n):
            m = 1.0 if mask is None else float(mask[i])
            w = 1.0 if weights is None else weights[i]
            num += m * w * values[i]
            den += m * w
        return num / den if den > 0 else 0.0
    return reduce_tokens(values, mask, weights)


def kd_per_item(student, teacher, temperature: float, kind: str, alpha: float) -> list:
    s, t = _list(student), _list(teacher)
    T = temperature

    def row(sr, tr):
        return T * T * divergence_row([x / T for x in tr], [x / T for x in sr], kind, alpha)

    if student.dim() == 2:
        return [row(s[i], t[i]) for i in range(len(s))]
    return [[row(s[b][k], t[b][k]) for k in range(len(s[b]))] for b in range(len(s))]


def kd(
    student,
    teacher,
    *,
    temperature: float = 4.0,
    alpha: float = 1.0,
    divergence: str = "forward",
    jsd_alpha: float = 0.5,
    labels=None,
    mask=None,
    weights=None,
) -> float:
    values = kd_per_item(student, teacher, temperature, divergence, jsd_alpha)
    m = None if mask is None else mask.tolist()
    w = _list(weights)
    loss = alpha * reduce(values, m, w) if alpha > 0 else 0.0
    if alpha < 1:
        s = _list(student)
        y = labels.tolist()
        if student.dim() == 2:
            ce = [-log_softmax(s[i])[y[i]] for i in range(len(s))]
        else:
            ce = [
                [
                    (-log_softmax(s[b][k])[y[b][k]] if (m is None or m[b][k]) else 0.0)
                    for k in range(len(s[b]))
                ]
                for b in range(len(s))
            ]
        loss += (1 - alpha) * reduce(ce, m)
    return loss


def feature(
    student, teacher, *, kind="mse", weight=None, bias=None, beta=1.0, mask=None, weights=None
) -> float:
    s, t = _list(student), _list(teacher)
    W, bb = _list(weight), _list(bias)

    def adapt(v):
        if W is None:
            return v
        return [math.fsum(W[o][k] * v[k] for k in range(len(v))) + bb[o] for o in range(len(W))]

    def dist(u, v):
        u = adapt(u)
        d = len(v)
        if kind == "mse":
            return math.fsum((a - b) ** 2 for a, b in zip(u, v, strict=True)) / d
        if kind == "cosine":
            dot = math.fsum(a * b for a, b in zip(u, v, strict=True))
            nu = math.sqrt(math.fsum(a * a for a in u))
            nv = math.sqrt(math.fsum(b * b for b in v))
            return 1 - dot / (nu * nv)
        total = 0.0
        for a, b in zip(u, v, strict=True):
            e = abs(a - b)
            total += 0.5 * e * e / beta if e < beta else e - 0.5 * beta
        return total / d

    if student.dim() == 2:
        values = [dist(s[i], t[i]) for i in range(len(s))]
    else:
        values = [[dist(s[b][k], t[b][k]) for k in range(len(s[b]))] for b in range(len(s))]
    return reduce(values, None if mask is None else mask.tolist(), _list(weights))


def token_contrast(s, a, b, *, margin=0.5, mask=None, weights=None) -> float:
    S, A, B = _list(s), _list(a), _list(b)
    values = [
        [
            max(0.0, margin + abs(S[i][t] - A[i][t]) - abs(S[i][t] - B[i][t]))
            for t in range(len(S[i]))
        ]
        for i in range(len(S))
    ]
    return reduce(values, None if mask is None else mask.tolist(), _list(weights))


def _huber(x: float, beta: float = 1.0) -> float:
    e = abs(x)
    return 0.5 * e * e / beta if e < beta else e - 0.5 * beta


def _norm(v: Sequence[float]) -> float:
    return math.sqrt(math.fsum(x * x for x in v))


def _rkd_structure(x: list) -> tuple[list, list]:
    n = len(x)
    dist = [
        [_norm([a - b for a, b in zip(x[i], x[j], strict=True)]) for j in range(n)]
        for i in range(n)
    ]
    mu = math.fsum(dist[i][j] for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    dist = [[dist[i][j] / mu for j in range(n)] for i in range(n)]
    angle = [[[0.0] * n for _ in range(n)] for _ in range(n)]
    for j in range(n):  # apex
        for i in range(n):
            for k in range(n):
                u = [a - b for a, b in zip(x[i], x[j], strict=True)]
                v = [a - b for a, b in zip(x[k], x[j], strict=True)]
                nu, nv = _norm(u), _norm(v)
                if nu > 0 and nv > 0:
                    angle[j][i][k] = math.fsum(p * q for p, q in zip(u, v, strict=True)) / (nu * nv)
    return dist, angle


def rkd(student, teacher, *, distance_weight=25.0, angle_weight=50.0) -> float:
    s = [list(map(float, r)) for r in _list(student.flatten(1))]
    t = [list(map(float, r)) for r in _list(teacher.flatten(1))]
    n = len(s)
    sd, sa = _rkd_structure(s)
    td, ta = _rkd_structure(t)
    dist = math.fsum(_huber(sd[i][j] - td[i][j]) for i in range(n) for j in range(n)) / n**2
    ang = (
        math.fsum(
            _huber(sa[j][i][k] - ta[j][i][k]) for i in range(n) for j in range(n) for k in range(n)
        )
        / n**3
    )
    return distance_weight * dist + angle_weight * ang


def _unit(v: list) -> list:
    n = _norm(v)
    return [x / n for x in v]


def _linear(v: list, W: list | None, b: list | None) -> list:
    if W is None:
        return v
    return [math.fsum(W[o][k] * v[k] for k in range(len(v))) + b[o] for o in range(len(W))]


def crd(
    student,
    teacher,
    *,
    temperature=0.07,
    student_head=None,
    teacher_head=None,
    memory=None,
    index=None,
    contrast_index=None,
    momentum=0.5,
) -> tuple[float, list | None]:
    """The loss and, with a memory bank, the updated bank (as nested lists)."""
    sh = (None, None) if student_head is None else (_list(student_head[0]), _list(student_head[1]))
    th = (None, None) if teacher_head is None else (_list(teacher_head[0]), _list(teacher_head[1]))
    es = [_unit(_linear(r, *sh)) for r in _list(student)]
    et = [_unit(_linear(r, *th)) for r in _list(teacher)]
    n = len(es)
    tau = temperature

    def sim(u, v):
        return math.fsum(a * b for a, b in zip(u, v, strict=True)) / tau

    mem = _list(memory)
    total_s = total_t = 0.0
    for i in range(n):
        row = [sim(es[i], et[j]) for j in range(n)]
        if mem is not None:
            row += [sim(es[i], mem[k]) for k in contrast_index[i].tolist()]
        total_s += lse(row) - sim(es[i], et[i])
        col = [sim(es[j], et[i]) for j in range(n)]
        total_t += lse(col) - sim(es[i], et[i])
    loss = 0.5 * (total_s / n + total_t / n)
    if mem is None:
        return loss, None
    new = [r[:] for r in mem]
    for i, idx in enumerate(index.tolist()):
        new[idx] = _unit(
            [momentum * a + (1 - momentum) * b for a, b in zip(mem[idx], et[i], strict=True)]
        )
    return loss, new


def score_kd(
    student, teachers, *, mask=None, student_temperature=1.0, teacher_temperature=1.0
) -> float:
    s = _list(student)
    ts = [_list(t) for t in (teachers if isinstance(teachers, list | tuple) else [teachers])]
    m = None if mask is None else mask.tolist()
    total = 0.0
    for q in range(len(s)):
        cand = [c for c in range(len(s[q])) if m is None or m[q][c]]
        t_scores = []
        for c in cand:
            scored = [t[q][c] for t in ts if not math.isnan(t[q][c])]
            t_scores.append(math.fsum(scored) / len(scored))
        lt = log_softmax([x / teacher_temperature for x in t_scores])
        ls = log_softmax([s[q][c] / student_temperature for c in cand])
        total += kl_logp(lt, ls)
    return total / len(s)


def clipped_kd(
    student,
    teacher,
    *,
    temperature=1.0,
    divergence="forward",
    jsd_alpha=0.5,
    kappa=10.0,
    q=None,
    mask=None,
    weights=None,
) -> float:
    values = kd_per_item(student, teacher, temperature, divergence, jsd_alpha)
    m = None if mask is None else mask.tolist()
    if student.dim() == 2:
        flat = [v for i, v in enumerate(values) if m is None or m[i]]
    else:
        flat = [
            v for b, row in enumerate(values) for t, v in enumerate(row) if m is None or m[b][t]
        ]
    cap = kappa if q is None else quantile(flat, q)
    if student.dim() == 2:
        clipped = [min(v, cap) for v in values]
    else:
        clipped = [[min(v, cap) for v in row] for row in values]
    return reduce(clipped, m, _list(weights))
