# The index letters follow docs/losses.md (i, j instances; m, l views), so `l` is on purpose.
# ruff: noqa: E741
"""Naive float64 reference implementations of the losses and metrics in ``manyview``.

Every function here is written straight from the formulas in ``docs/losses.md`` (its section
of each loss, and "Diagnostics"): explicit Python loops over instances, views and candidates,
with ``math.exp`` and ``math.log`` on Python floats. Nothing is vectorised, so these functions
are slow and only meant for small batches in tests.

Conventions (``docs/losses.md``, "The contract"): ``z`` is a float64 tensor of shape
(N, M, D) holding embeddings that are ALREADY L2-normalised; instance ``i`` and view ``m`` is
``z[i, m]``, and ``s_ij^{ml} = <z[i, m], z[j, l]>``, written ``s[i][m][j][l]`` below. The
functions never normalise ``z`` themselves, so they can also be used to check a
``normalize=False`` path on raw inputs. Each returns a Python float, except
:func:`isogclr_step` (a training step with state, which returns the loss, the new state and
the objective).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch

Sim = list[list[list[list[float]]]]
"""``s[i][m][j][l]``: the similarity of instance ``i`` view ``m`` with instance ``j`` view ``l``."""


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def lse(values: Iterable[float]) -> float:
    """log Σ exp(v) of a list of floats, shifted by the max; ``-inf`` for an empty list."""
    xs = list(values)
    if not xs:
        return -math.inf
    top = max(xs)
    if top == -math.inf:
        return -math.inf
    return top + math.log(math.fsum(math.exp(x - top) for x in xs))


def mean(values: Iterable[float]) -> float:
    """Arithmetic mean of a non-empty list of floats."""
    xs = list(values)
    if not xs:
        raise ValueError("mean of an empty list")
    return math.fsum(xs) / len(xs)


def _vectors(z: torch.Tensor) -> list[list[list[float]]]:
    """``z`` (N, M, D) as nested Python lists ``v[i][m][k]``."""
    if z.dim() != 3:
        raise ValueError(f"expected z of shape (N, M, D), got {tuple(z.shape)}")
    return z.detach().to(torch.float64).tolist()


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return math.fsum(x * y for x, y in zip(a, b, strict=True))


def similarities(z: torch.Tensor) -> Sim:
    """All pairwise inner products ``s[i][m][j][l] = <z[i, m], z[j, l]>``, one dot at a time."""
    v = _vectors(z)
    n, m_views = len(v), len(v[0])
    return [
        [
            [[_dot(v[i][m], v[j][l]) for l in range(m_views)] for j in range(n)]
            for m in range(m_views)
        ]
        for i in range(n)
    ]


def _shape(s: Sim) -> tuple[int, int]:
    return len(s), len(s[0])


def _similarities(
    z: torch.Tensor, who: str | None = None, *, two: bool = False
) -> tuple[Sim, int, int]:
    """:func:`similarities` of ``z`` with its N and M; with ``who``, a ValueError naming it
    unless M >= 2 (``two``: M == 2)."""
    s = similarities(z)
    n, m_views = _shape(s)
    if who is not None and (m_views != 2 if two else m_views < 2):
        raise ValueError(f"{who} needs M {'==' if two else '>='} 2")
    return s, n, m_views


def _log_sigmoid(x: float) -> float:
    """log σ(x) = −log(1 + e^{−x}), written so that neither branch overflows."""
    if x >= 0:
        return -math.log1p(math.exp(-x))
    return x - math.log1p(math.exp(x))


# --------------------------------------------------------------------------------------------
# InfoNCE / NT-Xent, PWE
# --------------------------------------------------------------------------------------------


def infonce(z: torch.Tensor, tau: float) -> float:
    """Multi-positive InfoNCE (SimCLR NT-Xent at M=2), ``docs/losses.md`` "infonce".

    For each of the MN anchors a = (i, m):
        ℓ_a = −(1/(M−1)) Σ_{l≠m} s_ii^{ml}/τ + LSE_{(j,l) ≠ (i,m)} s_ij^{ml}/τ,
    and the loss is the mean of ℓ_a over the MN anchors.
    """
    s, n, m_views = _similarities(z, "infonce")
    losses = []
    for i in range(n):
        for m in range(m_views):
            positive = math.fsum(s[i][m][i][l] / tau for l in range(m_views) if l != m)
            positive /= m_views - 1
            candidates = [
                s[i][m][j][l] / tau for j in range(n) for l in range(m_views) if (j, l) != (i, m)
            ]
            losses.append(-positive + lse(candidates))
    return mean(losses)


def pwe(
    z: torch.Tensor, tau: float, base: Callable[[torch.Tensor, float], float] | None = None
) -> float:
    """Pairwise ensemble (``docs/losses.md`` "pwe"): a two-view loss averaged over view pairs.

    The mean over the C(M, 2) view pairs m < l of ``base(z[:, [m, l]], tau)``; the base is
    :func:`infonce` unless given (e.g. :func:`dhel`).
    """
    two_view = infonce if base is None else base
    m_views = z.shape[1]
    values = [two_view(z[:, [m, l]], tau) for m in range(m_views) for l in range(m + 1, m_views)]
    return mean(values)


# --------------------------------------------------------------------------------------------
# CLIP and SigLIP
# --------------------------------------------------------------------------------------------


def clip(z: torch.Tensor, scale: float) -> float:
    """Symmetric CLIP loss (``docs/losses.md`` "clip"), view 0 = image, view 1 = text.

    L_ij = scale·<z[i,0], z[j,1]>;
    loss = ½ [ mean_i (−L_ii + LSE_j L_ij) + mean_j (−L_jj + LSE_i L_ij) ].
    """
    s, n, _ = _similarities(z, "clip", two=True)
    logits = [[scale * s[i][0][j][1] for j in range(n)] for i in range(n)]
    image_to_text = mean(-logits[i][i] + lse(logits[i][j] for j in range(n)) for i in range(n))
    text_to_image = mean(-logits[j][j] + lse(logits[i][j] for i in range(n)) for j in range(n))
    return 0.5 * (image_to_text + text_to_image)


def siglip(z: torch.Tensor, scale: float, bias: float) -> float:
    """Sigmoid loss (``docs/losses.md`` "siglip", open_clip ``SigLipLoss``).

    loss = −(1/N) Σ_i Σ_j log σ( y_ij (scale·<z[i,0], z[j,1]> + bias) ),
    y_ij = +1 if i == j else −1.
    """
    s, n, _ = _similarities(z, "siglip", two=True)
    total = []
    for i in range(n):
        for j in range(n):
            label = 1.0 if i == j else -1.0
            total.append(_log_sigmoid(label * (scale * s[i][0][j][1] + bias)))
    return -math.fsum(total) / n


# --------------------------------------------------------------------------------------------
# MV-InfoNCE, MV-DHEL, DHEL, PVC
# --------------------------------------------------------------------------------------------


def mv_infonce(z: torch.Tensor, tau: float, intra_view_negatives: bool = True) -> float:
    """MV-InfoNCE (``docs/losses.md`` "mv_infonce").

    L = (1/N) Σ_i [ −LSE_{(m,l): m≠l} s_ii^{ml}/τ + LSE over the union of the M anchor rows ].
    Row (m, i) contributes every (l, j) ≠ (m, i) when ``intra_view_negatives`` (the official
    code), or only the cross-view terms {(l, j): l ≠ m, all j} (the README formula) otherwise.
    """
    s, n, m_views = _similarities(z, "mv_infonce")
    losses = []
    for i in range(n):
        positives = [s[i][m][i][l] / tau for m in range(m_views) for l in range(m_views) if m != l]
        denominator = []
        for m in range(m_views):
            for j in range(n):
                for l in range(m_views):
                    keep = (l, j) != (m, i) if intra_view_negatives else l != m
                    if keep:
                        denominator.append(s[i][m][j][l] / tau)
        losses.append(-lse(positives) + lse(denominator))
    return mean(losses)


def mv_dhel(z: torch.Tensor, tau: float) -> float:
    """MV-DHEL (``docs/losses.md`` "mv_dhel and dhel").

    L = (1/N) Σ_i [ −LSE_{m<l} s_ii^{ml}/τ + Σ_m LSE_{j≠i} s_ij^{mm}/τ ].
    """
    s, n, m_views = _similarities(z, "mv_dhel")
    losses = []
    for i in range(n):
        alignment = lse(s[i][m][i][l] / tau for m in range(m_views) for l in range(m + 1, m_views))
        uniformity = math.fsum(
            lse(s[i][m][j][m] / tau for j in range(n) if j != i) for m in range(m_views)
        )
        losses.append(-alignment + uniformity)
    return mean(losses)


def dhel(z: torch.Tensor, tau: float) -> float:
    """Two-view DHEL (``docs/losses.md`` "mv_dhel and dhel", M=2 case).

    mean_i [ −s_ii^{12}/τ + LSE_{j≠i} s_ij^{11}/τ + LSE_{j≠i} s_ij^{22}/τ ].
    """
    s, n, _ = _similarities(z, "dhel", two=True)
    losses = []
    for i in range(n):
        positive = s[i][0][i][1] / tau
        view1 = lse(s[i][0][j][0] / tau for j in range(n) if j != i)
        view2 = lse(s[i][1][j][1] / tau for j in range(n) if j != i)
        losses.append(-positive + view1 + view2)
    return mean(losses)


def pvc(z: torch.Tensor, tau: float, method: str = "geometric") -> float:
    """Poly-View Contrastive loss (``docs/losses.md`` "pvc"), computed per sample.

    For anchor (i, α) and target view β ≠ α:
        ℓ_{iαβ} = −s_ii^{αβ}/τ + LSE( {s_ii^{αβ}/τ} ∪ {s_ij^{αγ}/τ : j ≠ i, γ ∈ [M]} ).
    geometric: the mean of ℓ over i, α and β ≠ α.
    arithmetic: per (i, α), −log( (1/(M−1)) Σ_{β≠α} exp(−ℓ_{iαβ}) ); then the mean over i, α.
    """
    s, n, m_views = _similarities(z, "pvc")
    if method not in ("geometric", "arithmetic"):
        raise ValueError(f"unknown method {method!r}")
    per_anchor = []
    for i in range(n):
        for alpha in range(m_views):
            others = [
                s[i][alpha][j][gamma] / tau for j in range(n) if j != i for gamma in range(m_views)
            ]
            ells = []
            for beta in range(m_views):
                if beta == alpha:
                    continue
                positive = s[i][alpha][i][beta] / tau
                ells.append(-positive + lse([positive, *others]))
            if method == "geometric":
                per_anchor.extend(ells)
            else:
                # ℓ >= 0 because the positive is one of the LSE terms, so exp(−ℓ) is in (0, 1].
                average = math.fsum(math.exp(-ell) for ell in ells) / (m_views - 1)
                per_anchor.append(-math.log(average))
    # geometric: every (i, α) has the same M−1 targets, so the flat mean equals the nested one.
    return mean(per_anchor)


# --------------------------------------------------------------------------------------------
# DCL / DCLW
# --------------------------------------------------------------------------------------------


def dcl_weights(z: torch.Tensor, sigma: float) -> list[list[list[float]]]:
    """von Mises-Fisher weights w[i][m][l] = 2 − N·exp(s_ii^{ml}/σ) / Σ_k exp(s_kk^{ml}/σ).

    The diagonal entries (l == m) are unused and set to 0.
    """
    s, n, m_views = _similarities(z)
    weights = [[[0.0] * m_views for _ in range(m_views)] for _ in range(n)]
    for m in range(m_views):
        for l in range(m_views):
            if l == m:
                continue
            partition = math.fsum(math.exp(s[k][m][k][l] / sigma) for k in range(n))
            for i in range(n):
                weights[i][m][l] = 2.0 - n * math.exp(s[i][m][i][l] / sigma) / partition
    return weights


def dcl(
    z: torch.Tensor,
    tau: float,
    weighted: bool = False,
    sigma: float = 0.5,
    weight_z: torch.Tensor | None = None,
) -> float:
    """Decoupled contrastive loss, M-view form (``docs/losses.md`` "dcl and dclw"); DCLW
    when ``weighted``.

    Anchor (i, m):
        ℓ = −(1/(M−1)) Σ_{l≠m} w_i^{ml} s_ii^{ml}/τ + LSE_{l∈[M], j≠i} s_ij^{ml}/τ,
    with every same-instance entry excluded from the LSE. w = 1 for DCL and the vMF weight of
    :func:`dcl_weights` for DCLW. Mean over the MN anchors.

    ``weight_z`` (DCLW only) computes the weights from other embeddings than ``z``; tests use it
    to freeze the weights when taking finite differences, as the library detaches them.
    """
    s, n, m_views = _similarities(z, "dcl")
    if weighted:
        weights = dcl_weights(z if weight_z is None else weight_z, sigma)
    else:
        weights = [[[1.0] * m_views for _ in range(m_views)] for _ in range(n)]
    losses = []
    for i in range(n):
        for m in range(m_views):
            positive = math.fsum(
                weights[i][m][l] * s[i][m][i][l] / tau for l in range(m_views) if l != m
            )
            positive /= m_views - 1
            negatives = [s[i][m][j][l] / tau for l in range(m_views) for j in range(n) if j != i]
            losses.append(-positive + lse(negatives))
    return mean(losses)


# --------------------------------------------------------------------------------------------
# SupCon
# --------------------------------------------------------------------------------------------


def supcon(
    z: torch.Tensor,
    tau: float,
    labels: Sequence[int] | torch.Tensor | None = None,
    mask: Sequence[Sequence[bool]] | torch.Tensor | None = None,
    variant: str = "out",
    base_temperature: float | None = None,
) -> float:
    """Supervised contrastive loss (``docs/losses.md`` "supcon"), every one of the MN rows an
    anchor.

    For anchor a = (i, m): A(a) = all rows except a; P(a) = the rows b = (j, l) ≠ a with
    y_j == y_i (``labels``), with mask[i][j] true (``mask``, N×N, tiled over views), or with
    j == i (neither given).
        out: ℓ_a = −(1/|P|) Σ_{p∈P} [ s_ap/τ − LSE_{c∈A} s_ac/τ ]
        in:  ℓ_a = −log( (1/|P|) Σ_{p∈P} exp(s_ap/τ − LSE_{c∈A} s_ac/τ) )
    An anchor with |P| = 0 contributes 0 and still counts in the mean over all MN anchors.
    The result is multiplied by τ/base_temperature when ``base_temperature`` is given.
    """
    if labels is not None and mask is not None:
        raise ValueError("give labels or mask, not both")
    if variant not in ("out", "in"):
        raise ValueError(f"unknown variant {variant!r}")
    s, n, m_views = _similarities(z)
    label_list = None if labels is None else [int(y) for y in torch.as_tensor(labels).tolist()]
    mask_list = (
        None if mask is None else [[bool(b) for b in row] for row in torch.as_tensor(mask).tolist()]
    )

    def is_positive(i: int, j: int) -> bool:
        if label_list is not None:
            return label_list[i] == label_list[j]
        if mask_list is not None:
            return mask_list[i][j]
        return i == j

    losses = []
    for i in range(n):
        for m in range(m_views):
            rows = [(j, l) for j in range(n) for l in range(m_views) if (j, l) != (i, m)]
            log_partition = lse(s[i][m][j][l] / tau for j, l in rows)
            log_probs = [s[i][m][j][l] / tau - log_partition for j, l in rows if is_positive(i, j)]
            if not log_probs:
                losses.append(0.0)
            elif variant == "out":
                losses.append(-mean(log_probs))
            else:
                # each log-probability is <= 0, so exp() is in (0, 1].
                losses.append(-math.log(mean(math.exp(x) for x in log_probs)))
    loss = mean(losses)
    if base_temperature is not None:
        loss *= tau / base_temperature
    return loss


# --------------------------------------------------------------------------------------------
# iSogCLR (one step of the unimodal algorithm, generalised to M views)
# --------------------------------------------------------------------------------------------


def isogclr_step(
    z: torch.Tensor,
    index: Sequence[int] | torch.Tensor,
    state: dict[str, list[Any]],
    *,
    rho: float,
    gamma: float,
    beta: float,
    eta: float,
    tau_min: float,
    tau_max: float,
    grad_clip: float,
) -> tuple[float, dict[str, list[Any]], float]:
    """One training step of iSogCLR (``docs/losses.md`` "isogclr", unimodal), generalised to
    M views.

    ``state`` holds Python lists of length n_dataset: ``tau``, ``u`` (the moving average of
    the partition function, in the linear domain), ``momentum`` and ``seen`` (bools). It is
    not modified; the updated copy is returned.

    For instance i (dataset sample k = index[i], temperature τ = tau[k]) and view m, the
    anchor a = (i, m) has the negatives S⁻ = every view of every other instance
    (|S⁻| = M(N−1)) and the positive similarity s̄+ = mean_{l≠m} s_ii^{ml}. Then
        g = (1/|S⁻|) Σ_{z∈S⁻} exp(s_az/τ),
        u_a = g on k's first visit, else (1−γ)·u[k] + γ·g,
        p_az = exp(s_az/τ)/u_a,
        surrogate_a = (1/|S⁻|) Σ_z p_az·s_az − s̄+,
        G_a = log u_a + ρ − (1/|S⁻|) Σ_z p_az·s_az/τ,
        F_a = τ·log((1/|S⁻|) Σ_z exp((s_az − s̄+)/τ)) + τρ.
    The loss is mean_i Σ_m surrogate_(i,m) and F is the mean of F_a over the MN anchors.
    The state update: u[k] = mean_m u_(i,m), seen[k] = True, G = clip(mean_m G_(i,m),
    ±grad_clip), momentum[k] ← (1−β)·momentum[k] + β·G, tau[k] ← clip(τ − η·momentum[k],
    tau_min, tau_max).

    Returns ``(loss, new_state, F)``.
    """
    s, n, m_views = _similarities(z)
    idx = [int(k) for k in torch.as_tensor(index).tolist()]
    if len(idx) != n or len(set(idx)) != n:
        raise ValueError("index must hold N distinct dataset indices")
    new = {key: list(values) for key, values in state.items()}
    num_neg = m_views * (n - 1)
    per_instance, objective = [], []
    for i in range(n):
        k = idx[i]
        tau = state["tau"][k]
        surrogate_sum, us, grads = [], [], []
        for m in range(m_views):
            negatives = [s[i][m][j][l] for j in range(n) if j != i for l in range(m_views)]
            positive = mean(s[i][m][i][l] for l in range(m_views) if l != m)
            g = math.fsum(math.exp(x / tau) for x in negatives) / num_neg
            u = (1 - gamma) * state["u"][k] + gamma * g if state["seen"][k] else g
            weights = [math.exp(x / tau) / u for x in negatives]
            weighted = math.fsum(p * x for p, x in zip(weights, negatives, strict=True)) / num_neg
            surrogate_sum.append(weighted - positive)
            grads.append(math.log(u) + rho - weighted / tau)
            us.append(u)
            h = [(x - positive) / tau for x in negatives]
            objective.append(tau * (lse(h) - math.log(num_neg)) + tau * rho)
        per_instance.append(math.fsum(surrogate_sum))
        grad = min(max(mean(grads), -grad_clip), grad_clip)
        momentum = (1 - beta) * state["momentum"][k] + beta * grad
        new["u"][k] = mean(us)
        new["seen"][k] = True
        new["momentum"][k] = momentum
        new["tau"][k] = min(max(tau - eta * momentum, tau_min), tau_max)
    return mean(per_instance), new, mean(objective)


# --------------------------------------------------------------------------------------------
# SupReMix
# --------------------------------------------------------------------------------------------


def _label_weight(dy: float, weighting: str) -> float:
    if weighting == "l1":
        return abs(dy) + 1.0
    if weighting == "l2":
        return dy * dy + 1.0
    if weighting == "none":
        return 1.0
    raise ValueError(f"unknown weighting {weighting!r}")


def supremix(
    z: torch.Tensor,
    y: Sequence[float] | torch.Tensor,
    tau: float,
    lam: float,
    window: float = 5.0,
    weighting: str = "l1",
    mix_z: torch.Tensor | None = None,
) -> float:
    """SupReMix (``docs/losses.md`` "supremix") with one fixed λ for every hard-negative mixture.

    The R = MN rows are view-major (row r = m·N + i, vector z[i, m], label y[i]). For
    anchor a, the candidates C_a, each with a weight w = W(y_a − label) where W(d) = |d| + 1
    ("l1"), d² + 1 ("l2") or 1 ("none"), are:
      - every real row c ≠ a (label y_c);
      - for every row k with y_k ≠ y_a, the hard negative n_ak = λ·x_a + (1−λ)·x_k with label
        λ·y_a + (1−λ)·y_k;
      - for every ordered pair of rows (j, k) with y_j < y_a < y_k, y_a − y_j < window and
        y_k − y_a < window, the hard positive p_ajk = α·x_j + (1−α)·x_k, α = (y_k − y_a) /
        (y_k − y_j), weight 1;
    with x = ``mix_z`` (default ``z``): the mixtures are built from x and never renormalised.
    The positives P_a are the real rows c ≠ a with y_c == y_a and every hard positive of a.
        ℓ_a = −(1/|P_a|) Σ_{p∈P_a} [ s_ap/τ − log Σ_{c∈C_a} w_ac·exp(s_ac/τ) ],
    ℓ_a = 0 when P_a is empty, and the loss is the mean of ℓ_a over the R anchors.

    ``mix_z`` lets a gradient check freeze the mixtures' building blocks (the library builds
    mixtures from detached embeddings): with ``mix_z`` fixed, only the anchor and the real
    candidates move with ``z``.
    """
    v = _vectors(z)
    x = v if mix_z is None else _vectors(mix_z)
    n, m_views = len(v), len(v[0])
    labels = [float(t) for t in torch.as_tensor(y, dtype=torch.float64).tolist()]
    if len(labels) != n:
        raise ValueError("need one label per instance")
    rows = [(i, m) for m in range(m_views) for i in range(n)]  # view-major: r = m·N + i
    vec = [v[i][m] for i, m in rows]
    mix = [x[i][m] for i, m in rows]
    lab = [labels[i] for i, _ in rows]

    def combine(c: float, p: Sequence[float], q: Sequence[float]) -> list[float]:
        return [c * a + (1.0 - c) * b for a, b in zip(p, q, strict=True)]

    losses = []
    for a in range(len(rows)):
        ya = lab[a]
        candidates: list[float] = []  # log(w) + s/τ for every c in C_a
        positives: list[float] = []  # s/τ for every p in P_a
        for c in range(len(rows)):
            if c == a:
                continue
            logit = _dot(vec[a], vec[c]) / tau
            candidates.append(math.log(_label_weight(ya - lab[c], weighting)) + logit)
            if lab[c] == ya:
                positives.append(logit)
        for k in range(len(rows)):
            if lab[k] == ya:
                continue
            negative = combine(lam, mix[a], mix[k])
            label = lam * ya + (1.0 - lam) * lab[k]
            weight = _label_weight(ya - label, weighting)
            candidates.append(math.log(weight) + _dot(vec[a], negative) / tau)
        for j in range(len(rows)):
            if not (lab[j] < ya and ya - lab[j] < window):
                continue
            for k in range(len(rows)):
                if not (ya < lab[k] and lab[k] - ya < window):
                    continue
                alpha = (lab[k] - ya) / (lab[k] - lab[j])
                logit = _dot(vec[a], combine(alpha, mix[j], mix[k])) / tau
                candidates.append(logit)  # weight 1: the mixture's label is y_a
                positives.append(logit)
        if not positives:
            losses.append(0.0)
            continue
        log_partition = lse(candidates)
        losses.append(-mean(p - log_partition for p in positives))
    return mean(losses)


# --------------------------------------------------------------------------------------------
# diagnostics
# --------------------------------------------------------------------------------------------


def alignment(z: torch.Tensor, alpha: float = 2.0) -> float:
    """Alignment (Wang & Isola), ``docs/losses.md`` "Diagnostics", on the embeddings as given.

    The mean over view pairs m < l of mean_i ‖z[i,m] − z[i,l]‖₂^α.
    """
    v = _vectors(z)
    n, m_views = len(v), len(v[0])
    per_pair = []
    for m in range(m_views):
        for l in range(m + 1, m_views):
            distances = []
            for i in range(n):
                squared = math.fsum((a - b) ** 2 for a, b in zip(v[i][m], v[i][l], strict=True))
                distances.append(math.sqrt(squared) ** alpha)
            per_pair.append(mean(distances))
    return mean(per_pair)


def uniformity(z: torch.Tensor, t: float = 2.0) -> float:
    """Uniformity (Wang & Isola), ``docs/losses.md`` "Diagnostics", on the embeddings as given.

    The mean over views m of log( mean_{i<j} exp(−t‖z[i,m] − z[j,m]‖₂²) ).
    """
    v = _vectors(z)
    n, m_views = len(v), len(v[0])
    per_view = []
    for m in range(m_views):
        exponents = []
        for i in range(n):
            for j in range(i + 1, n):
                squared = math.fsum((a - b) ** 2 for a, b in zip(v[i][m], v[j][m], strict=True))
                exponents.append(-t * squared)
        # log mean exp, through the shifted LSE so that large distances cannot underflow.
        per_view.append(lse(exponents) - math.log(len(exponents)))
    return mean(per_view)


def effective_rank(x: torch.Tensor, eps: float = 0.0, on: str = "singular") -> float:
    """Effective rank (Roy & Vetterli), ``docs/losses.md`` "Diagnostics", of an (N, D) matrix
    as given.

    exp(−Σ_k p_k log p_k) with p = σ/‖σ‖₁ over the singular values σ of x (numpy's SVD, not
    torch's, so the two paths share no code); ``on="cov_eig"`` uses σ² instead of σ. With
    ``eps == 0`` only the strictly positive values enter (the exact definition); with
    ``eps > 0`` (RankMe / the DHEL code) every one of the min(N, D) values does, and
    p_k ← (p_k + eps) / Σ_k (p_k + eps).
    """
    if x.dim() != 2:
        raise ValueError(f"expected x of shape (N, D), got {tuple(x.shape)}")
    singular = [float(v) for v in np.linalg.svd(x.detach().double().numpy(), compute_uv=False)]
    if on == "cov_eig":
        singular = [v * v for v in singular]
    elif on != "singular":
        raise ValueError(f"unknown on={on!r}")
    if eps == 0.0:
        singular = [v for v in singular if v > 0.0]
    total = math.fsum(singular)
    p = [v / total + eps for v in singular]
    norm = math.fsum(p)
    p = [pk / norm for pk in p]
    entropy = -math.fsum(pk * math.log(pk) for pk in p if pk > 0.0)
    return math.exp(entropy)
