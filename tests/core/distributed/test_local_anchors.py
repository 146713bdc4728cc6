"""Local anchors without processes: each rank's ``compute_local`` share of a loss, summed
over a simulated world, is the whole-batch loss, value and gradient; which losses fall back
to the full global loss; the distributed helpers outside torch.distributed."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import manyview
from manyview import distributed
from manyview.losses import InfoNCE, MultiViewLoss

G = 12  # global batch
LABELS = torch.tensor([0, 1, 2, 0, 1, 2, 3, 3, 0, 1, 1, 2])
MASK = torch.rand(G, G, generator=torch.Generator().manual_seed(5)) > 0.6

LOCAL = [
    ("infonce", {}, 3, {}),
    ("infonce", {}, 2, {}),
    ("mv_infonce", {}, 4, {}),
    ("mv_infonce", {"intra_view_negatives": False}, 3, {}),
    ("supcon", {}, 3, {}),
    ("supcon", {}, 2, {"labels": LABELS}),
    (
        "supcon",
        {"variant": "in", "anchors": "one", "base_temperature": 0.07},
        3,
        {"labels": LABELS},
    ),
    ("supcon", {}, 1, {"mask": MASK}),
    ("clip", {}, 2, {}),
    ("clip", {"learnable": True}, 2, {}),
    ("siglip", {}, 2, {}),
    ("mv_dhel", {}, 4, {}),
    ("dhel", {}, 2, {}),
    ("dhel", {"include_augs": False}, 2, {}),
    ("dcl", {}, 3, {}),
    ("dclw", {}, 2, {}),
    ("dclw", {"detach_weights": False}, 3, {}),
    ("pvc", {}, 3, {}),
    ("pvc", {"method": "arithmetic"}, 4, {}),
]


def _z(m: int, seed: int = 0) -> torch.Tensor:
    x = torch.randn(G, m, 5, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return F.normalize(x, dim=-1).requires_grad_(True)


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize(
    ("name", "kwargs", "m", "inputs"), LOCAL, ids=[f"{c[0]}-{i}" for i, c in enumerate(LOCAL)]
)
def test_local_shares_add_up_to_the_whole_batch(name, kwargs, m, inputs, world):
    loss = manyview.create("loss", name, **kwargs).double()
    assert loss.has_local_anchors()
    z = _z(m)
    inputs = {"labels": None, "index": None, **inputs}
    whole = loss.compute(z, **inputs)
    (gz_whole,) = torch.autograd.grad(whole, z)
    count = G // world
    shares = [loss.compute_local(z, offset=r * count, count=count, **inputs) for r in range(world)]
    mean = torch.stack(shares).mean()
    (gz_mean,) = torch.autograd.grad(mean, z)
    assert torch.allclose(mean, whole, rtol=1e-12, atol=1e-12), (mean.item(), whole.item())
    assert torch.allclose(gz_mean, gz_whole, rtol=1e-10, atol=1e-12)
    every = loss.compute_local(z, offset=0, count=G, **inputs)
    assert torch.equal(every, whole)


def test_fallback_losses():
    fallback = {"isogclr", "supremix", "pwe"}
    for name in fallback:
        kwargs = {"num_samples": 16} if name == "isogclr" else {}
        assert not manyview.create("loss", name, **kwargs).has_local_anchors(), name
    for name in {c[0] for c in LOCAL}:
        assert manyview.create("loss", name).has_local_anchors(), name


def test_a_subclass_that_overrides_compute_falls_back_to_full():
    class Scaled(InfoNCE):
        def compute(self, z, **kwargs):
            return 2 * super().compute(z, **kwargs)

    class OnlyLocal(MultiViewLoss):
        def compute_local(self, z, *, offset, count, **_):
            return z[offset : offset + count].sum(-1).mean()

    assert not Scaled.has_local_anchors()  # compute_local would not match its compute
    assert OnlyLocal.has_local_anchors()
    z = torch.randn(4, 2, 3)
    assert torch.allclose(OnlyLocal()(z), F.normalize(z, dim=-1).sum(-1).mean())
    with pytest.raises(NotImplementedError, match="compute"):
        MultiViewLoss()(z)


def test_helpers_outside_torch_distributed():
    x = torch.randn(3, 2)
    assert distributed.all_gather_with_grad(x) is x
    assert distributed.all_gather_no_grad(x) is x
    assert distributed.rank() == 0 and distributed.world_size() == 1
    assert not distributed.is_global_batch()
    with distributed.global_batch():
        assert distributed.is_global_batch() and distributed.get_gather_mode() == "none"
    assert distributed.get_gather_mode() == "local_anchors"


def test_unequal_batches_raise_a_value_error(monkeypatch):
    """Simulated 2 ranks whose batches differ: the same clear error on every rank."""
    monkeypatch.setattr(distributed, "is_distributed", lambda: True)
    monkeypatch.setattr(distributed.dist, "get_world_size", lambda *a, **k: 2)

    def all_gather(out, shape):
        out[0].copy_(shape)
        out[1].copy_(shape)
        out[1][1] += 1  # the other rank has one instance more

    monkeypatch.setattr(distributed.dist, "all_gather", all_gather)
    with pytest.raises(ValueError, match=r"rank 0: \(4, 2\), rank 1: \(5, 2\).*drop_last"):
        distributed.all_gather_with_grad(torch.zeros(4, 2))
    with pytest.raises(ValueError, match="same shape"):
        distributed.all_gather_no_grad(torch.zeros(4, dtype=torch.long))
