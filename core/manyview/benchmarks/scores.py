"""Scores on plain embeddings: retrieval Recall@K, zero-shot, kNN and linear-probe accuracy.

Every function takes ``(N, D)`` tensors (any scale; they are L2-normalised where cosine
similarity is meant) and integer labels, and returns Python floats.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from manyview.benchmarks import BenchmarkError
from manyview.benchmarks.prompts import ensemble

__all__ = [
    "ensemble_prompts",
    "knn_accuracy",
    "linear_probe_accuracy",
    "recall_at_k",
    "zero_shot_accuracy",
]


def _matrix(x: Tensor, who: str) -> Tensor:
    if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[0] == 0:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise BenchmarkError(f"{who}: expects non-empty (N, D) embeddings, got {shape}")
    if not torch.isfinite(x).all():
        raise BenchmarkError(f"{who}: embeddings contain NaN or inf")
    return F.normalize(x.detach().float(), dim=-1)


def _labels(y: Tensor | Sequence[int], n: int, who: str) -> Tensor:
    y = torch.as_tensor(y, dtype=torch.long).reshape(-1)
    if y.numel() != n:
        raise BenchmarkError(f"{who}: {y.numel()} labels for {n} embeddings")
    return y


def _pair(x: Tensor, y: Tensor, x_name: str, y_name: str, who: str) -> tuple[Tensor, Tensor]:
    """Two checked, L2-normalised embedding matrices of the same dimension."""
    a = _matrix(x, f"{who} {x_name}")
    b = _matrix(y, f"{who} {y_name}")
    if a.shape[1] != b.shape[1]:
        raise BenchmarkError(f"{who}: {x_name} dim {a.shape[1]} but {y_name} dim {b.shape[1]}")
    return a, b


def _train_test(
    train: Tensor,
    train_labels: Tensor | Sequence[int],
    test: Tensor,
    test_labels: Tensor | Sequence[int],
    who: str,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The checked train and test embeddings and their labels, for a classifier score."""
    a, b = _pair(train, test, "train", "test", who)
    ya = _labels(train_labels, a.shape[0], f"{who} train")
    yb = _labels(test_labels, b.shape[0], f"{who} test")
    return a, ya, b, yb


def recall_at_k(
    queries: Tensor,
    targets: Tensor,
    query_labels: Tensor | Sequence[int] | None = None,
    target_labels: Tensor | Sequence[int] | None = None,
    *,
    ks: Sequence[int] = (1, 5, 10),
    level: str = "class",
    chunk: int = 1024,
) -> dict[int, float]:
    """Recall@K of cosine retrieval from every query into ``targets``.

    ``level="class"``: a query scores at K when one of its K nearest targets has the query's
    label. ``level="instance"``: when target ``i`` (the query's true pair: same index) is
    among them; this needs as many targets as queries and no labels. K above the number of
    targets is clipped.
    """
    if level not in ("class", "instance"):
        raise BenchmarkError(f"recall_at_k: level must be 'class' or 'instance', got {level!r}")
    q, t = _pair(queries, targets, "queries", "targets", "recall_at_k")
    if not ks or any(int(k) < 1 for k in ks):
        raise BenchmarkError(f"recall_at_k: ks must be positive, got {list(ks)}")
    if level == "instance":
        if q.shape[0] != t.shape[0]:
            raise BenchmarkError(
                f"recall_at_k: instance level needs paired rows, got {q.shape[0]} queries "
                f"and {t.shape[0]} targets"
            )
        truth = torch.arange(q.shape[0])
    else:
        if query_labels is None or target_labels is None:
            raise BenchmarkError("recall_at_k: class level needs query and target labels")
        qy = _labels(query_labels, q.shape[0], "recall_at_k queries")
        ty = _labels(target_labels, t.shape[0], "recall_at_k targets")
    kmax = min(max(int(k) for k in ks), t.shape[0])
    hits = {int(k): 0 for k in ks}
    for start in range(0, q.shape[0], chunk):
        top = (q[start : start + chunk] @ t.T).topk(kmax, dim=1).indices  # (n, kmax)
        if level == "instance":
            match = top == truth[start : start + chunk, None]
        else:
            match = ty[top] == qy[start : start + chunk, None]
        for k in hits:
            hits[k] += int(match[:, : min(k, kmax)].any(dim=1).sum())
    return {k: h / q.shape[0] for k, h in hits.items()}


def ensemble_prompts(embeddings: Tensor) -> Tensor:
    """Prompt ensembling (CLIP): ``(C, T, D)`` template embeddings per class to ``(C, D)``
    unit class embeddings, the normalised mean of the normalised template embeddings."""
    if not isinstance(embeddings, Tensor) or embeddings.dim() != 3:
        shape = tuple(embeddings.shape) if isinstance(embeddings, Tensor) else embeddings
        raise BenchmarkError(f"ensemble_prompts: expects (C, T, D), got {shape}")
    return ensemble(embeddings.float())


def zero_shot_accuracy(
    features: Tensor, class_embeddings: Tensor, labels: Tensor | Sequence[int]
) -> float:
    """Accuracy of predicting the class whose (ensembled) embedding is most cosine-similar."""
    u, w = _pair(features, class_embeddings, "features", "class embeddings", "zero_shot_accuracy")
    y = _labels(labels, u.shape[0], "zero_shot_accuracy")
    if int(y.max()) >= w.shape[0] or int(y.min()) < 0:
        raise BenchmarkError(
            f"zero_shot_accuracy: labels reach {int(y.max())} but there are {w.shape[0]} classes"
        )
    return float(((u @ w.T).argmax(dim=1) == y).float().mean())


def knn_accuracy(
    train: Tensor,
    train_labels: Tensor | Sequence[int],
    test: Tensor,
    test_labels: Tensor | Sequence[int],
    *,
    k: int = 10,
    chunk: int = 1024,
) -> float:
    """Accuracy of a cosine k-nearest-neighbour majority vote (ties go to the class with the
    larger summed similarity) of ``test`` against the ``train`` bank."""
    a, ya, b, yb = _train_test(train, train_labels, test, test_labels, "knn_accuracy")
    k = max(1, min(int(k), a.shape[0]))
    classes = int(max(ya.max(), yb.max())) + 1
    correct = 0
    for start in range(0, b.shape[0], chunk):
        sim, idx = (b[start : start + chunk] @ a.T).topk(k, dim=1)
        votes = torch.zeros(sim.shape[0], classes)
        votes.scatter_add_(1, ya[idx], 1.0 + 1e-3 * sim)  # count first, similarity breaks ties
        correct += int((votes.argmax(dim=1) == yb[start : start + chunk]).sum())
    return correct / b.shape[0]


def linear_probe_accuracy(
    train: Tensor,
    train_labels: Tensor | Sequence[int],
    test: Tensor,
    test_labels: Tensor | Sequence[int],
    *,
    C: float = 1.0,
    max_iter: int = 1000,
    seed: int = 0,
) -> float:
    """Test accuracy of scikit-learn's ``LogisticRegression`` fitted on standardised train
    embeddings (L2-normalised first)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    a, ya, b, yb = (
        t.numpy() for t in _train_test(train, train_labels, test, test_labels, "linear_probe")
    )
    if len(set(ya.tolist())) < 2:
        raise BenchmarkError("linear_probe: the train split has fewer than two classes")
    clf = make_pipeline(
        StandardScaler(), LogisticRegression(C=C, max_iter=max_iter, random_state=seed)
    )
    clf.fit(a, ya)
    return float((clf.predict(b) == yb).mean())
