"""The benchmark scores on hand-built embeddings."""

from __future__ import annotations

import pytest
import torch

from manyview.benchmarks import BenchmarkError
from manyview.benchmarks.scores import (
    ensemble_prompts,
    knn_accuracy,
    linear_probe_accuracy,
    recall_at_k,
    zero_shot_accuracy,
)


def clusters(n: int = 200, classes: int = 4, dim: int = 16, noise: float = 0.05, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    protos = torch.randn(classes, dim, generator=g) * 3
    y = torch.arange(n) % classes
    return protos, y, protos[y] + noise * torch.randn(n, dim, generator=g)


def test_perfect_retrieval_is_one_at_both_levels():
    _, y, x = clusters()
    for level in ("class", "instance"):
        r = recall_at_k(x, x.clone(), y, y, level=level)
        assert r == {1: 1.0, 5: 1.0, 10: 1.0}


def test_shuffled_retrieval_is_at_chance():
    g = torch.Generator().manual_seed(1)
    n, classes = 2000, 4
    q, t = torch.randn(n, 32, generator=g), torch.randn(n, 32, generator=g)
    y = torch.randint(0, classes, (n,), generator=g)
    r1 = recall_at_k(q, t, y, y, ks=(1,))[1]
    assert abs(r1 - 1 / classes) < 0.04
    inst = recall_at_k(q, t[torch.randperm(n, generator=g)], ks=(1, 10), level="instance")
    assert inst[1] < 0.01 and inst[10] < 0.02


def test_class_level_hits_where_instance_level_misses():
    protos, y, q = clusters(noise=0.01, seed=2)
    g = torch.Generator().manual_seed(3)
    t = protos[y] + 0.01 * torch.randn(q.shape, generator=g)  # same class, other noise
    assert recall_at_k(q, t, y, y, ks=(1,))[1] == 1.0
    assert recall_at_k(q, t, ks=(1,), level="instance")[1] < 0.2


def test_k_is_clipped_to_the_number_of_targets():
    q = torch.eye(3)
    r = recall_at_k(q, q, [0, 1, 2], [0, 1, 2], ks=(1, 5, 10), level="instance")
    assert r == {1: 1.0, 5: 1.0, 10: 1.0}


def test_zero_shot_on_separable_prompt_embeddings():
    protos, y, x = clusters(noise=0.3, seed=4)
    g = torch.Generator().manual_seed(5)
    prompts = protos[:, None] + 0.3 * torch.randn(4, 3, protos.shape[1], generator=g)  # (C, T, D)
    weights = ensemble_prompts(prompts)
    assert weights.shape == (4, 16)
    assert torch.allclose(weights.norm(dim=1), torch.ones(4))
    assert zero_shot_accuracy(x, weights, y) == 1.0
    assert zero_shot_accuracy(x, weights[[1, 2, 3, 0]], y) == 0.0  # wrong class order


def test_knn_and_probe_on_separable_clusters():
    _, y, x = clusters(seed=6)
    _, y2, x2 = clusters(seed=6, noise=0.2)
    assert knn_accuracy(x, y, x2, y2, k=5) == 1.0
    assert linear_probe_accuracy(x, y, x2, y2) == 1.0


def test_bad_inputs_are_named():
    x = torch.randn(5, 4)
    with pytest.raises(BenchmarkError, match="dim"):
        recall_at_k(x, torch.randn(5, 3), [0] * 5, [0] * 5)
    with pytest.raises(BenchmarkError, match="paired"):
        recall_at_k(x, torch.randn(4, 4), level="instance")
    with pytest.raises(BenchmarkError, match="labels"):
        recall_at_k(x, x, [0, 1], [0] * 5)
    with pytest.raises(BenchmarkError, match="non-empty"):
        recall_at_k(torch.zeros(0, 4), x, [], [0] * 5)
    with pytest.raises(BenchmarkError, match="NaN"):
        knn_accuracy(x, [0] * 5, torch.full((2, 4), float("nan")), [0, 0])
    with pytest.raises(BenchmarkError, match="fewer than two classes"):
        linear_probe_accuracy(x, [0] * 5, x, [0] * 5)
