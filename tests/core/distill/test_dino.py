"""DINOLoss: the naive loop, centring, the temperature schedule, state and bad inputs."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

import manyview
from manyview.distill.dino import DINOLoss

from . import reference_sd as R
from ._helpers import RTOL, randn


@pytest.mark.parametrize(("n", "v", "g", "k"), [(4, 4, 2, 7), (3, 6, 2, 5), (5, 3, 1, 4)])
@pytest.mark.parametrize("warm", [False, True])
def test_matches_naive_loop_and_updates_the_center(n, v, g, k, warm):
    kwargs = {"teacher_temperature_warmup": (0.02, 0.07, 5), "teacher_temperature": 0.07}
    loss = DINOLoss(k, num_global=g, **(kwargs if warm else {})).double()
    loss.center.copy_(randn(k, seed=9, scale=0.5))
    loss.set_step(2)
    tau_t = 0.02 + 0.05 * 2 / 4 if warm else 0.04
    s, t = randn(n, v, k, seed=1, scale=3.0), randn(n, g, k, seed=2, scale=3.0)
    c0 = loss.center.clone()
    value = loss(s, targets=t)
    expected = R.dino(s, t, c0, 0.1, tau_t)
    assert value.dtype == torch.float64
    assert math.isclose(value.item(), expected, rel_tol=RTOL), (value.item(), expected)
    new_center = R.dino_center(t, c0, 0.9)
    assert torch.allclose(loss.center, torch.tensor(new_center, dtype=torch.float64), rtol=1e-12)


def test_eval_mode_freezes_the_center_and_gradient_reaches_only_the_student():
    loss = DINOLoss(6).eval()
    s = torch.randn(4, 4, 6, requires_grad=True)
    t = torch.randn(4, 2, 6)
    loss(s, targets=t).backward()
    assert torch.equal(loss.center, torch.zeros(6))
    assert s.grad is not None and torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="require grad"):
        loss(s, targets=t.clone().requires_grad_(True))


def test_teacher_temperature_schedule_is_the_official_linspace():
    loss = DINOLoss(4, teacher_temperature=0.07, teacher_temperature_warmup=(0.04, 0.07, 30))
    sched = np.linspace(0.04, 0.07, 30)
    for k in (0, 1, 15, 29):
        assert math.isclose(loss.teacher_temperature_at(k), float(sched[k]), rel_tol=1e-12)
    assert loss.teacher_temperature_at(30) == 0.07 == loss.teacher_temperature_at(500)
    assert loss.teacher_temperature_at() == 0.04  # the stored step starts at 0
    loss(torch.randn(2, 3, 4), targets=torch.randn(2, 2, 4), step=29)  # `step=` sets it
    assert int(loss.step) == 29
    assert DINOLoss(4).teacher_temperature_at(10**6) == 0.04  # no warm-up: constant
    one = DINOLoss(4, teacher_temperature=0.07, teacher_temperature_warmup=(0.04, 0.07, 1))
    assert one.teacher_temperature_at(0) == 0.04 and one.teacher_temperature_at(1) == 0.07


def test_state_dict_round_trip():
    a = DINOLoss(5, teacher_temperature=0.07, teacher_temperature_warmup=(0.04, 0.07, 10))
    s, t = torch.randn(3, 4, 5), torch.randn(3, 2, 5)
    a(s, targets=t, step=4)
    a(s, targets=t)
    state = a.state_dict()
    assert set(state) == {"center", "step"}
    b = DINOLoss(5, teacher_temperature=0.07, teacher_temperature_warmup=(0.04, 0.07, 10))
    b.load_state_dict(state)
    assert torch.equal(a.center, b.center) and int(b.step) == 4
    assert torch.equal(a.eval()(s, targets=t), b.eval()(s, targets=t))


def _toy_dino(center_momentum: float, steps: int = 50) -> tuple[list[float], float]:
    """A toy student and EMA teacher on random data; the teacher's per-sample entropies and
    the largest batch-averaged teacher probability at the end."""
    torch.manual_seed(0)
    k = 16
    student = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.GELU(), torch.nn.Linear(32, k))
    teacher = copy.deepcopy(student).requires_grad_(False)
    loss = DINOLoss(k, center_momentum=center_momentum)
    opt = R.Adam(student.parameters(), lr=1e-2)
    entropies = []
    for _ in range(steps):
        x = torch.randn(32, 8)
        crops = torch.stack([x + 0.1 * torch.randn_like(x) for _ in range(4)], 1)
        with torch.no_grad():
            t = teacher(crops[:, :2])
        value = loss(student(crops), targets=t)
        opt.zero_grad()
        value.backward()
        opt.step()
        with torch.no_grad():
            for pt, ps in zip(teacher.parameters(), student.parameters(), strict=True):
                pt.mul_(0.99).add_(ps, alpha=0.01)
            p = torch.softmax((t - loss.center) / 0.04, dim=-1)
            entropies.append(-(p * p.clamp_min(1e-30).log()).sum(-1).mean().item())
    return entropies, p.mean(dim=(0, 1)).max().item()


def test_centering_keeps_the_teacher_between_one_hot_and_uniform(one_thread):
    """docs/distillation.md "dino": with centring and tau_t < tau_s the teacher's entropy stays
    strictly between 0 and log K for 50 steps; without centring (momentum 1 keeps c = 0) the
    batch-averaged teacher distribution piles onto one dimension."""
    entropies, top = _toy_dino(0.9)
    assert all(0.1 < h < 0.9 * math.log(16) for h in entropies), entropies
    _, top_without = _toy_dino(1.0)
    assert top < 0.3 < top_without, (top, top_without)


def test_registered_and_example_inputs():
    loss = manyview.create("loss", "dino", out_dim=32)
    s, kw = loss.example_inputs(4, 6, generator=torch.Generator().manual_seed(0))
    assert s.shape == (4, 6, 32) and kw["targets"].shape == (4, 2, 32)
    assert torch.isfinite(loss(s, **kw))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"student_temperature": 0.0}, "student_temperature"),
        ({"teacher_temperature": -1.0}, "teacher_temperature"),
        ({"center_momentum": 1.5}, "center_momentum"),
        ({"out_dim": 0}, "out_dim"),
        ({"num_global": 0}, "num_global"),
        ({"teacher_temperature_warmup": (0.04, 0.07, 30)}, "teacher_temperature="),
        ({"teacher_temperature_warmup": (0.0, 0.04, 30)}, "start"),
        ({"teacher_temperature_warmup": (0.02, 0.04, 0)}, "steps"),
        ({"teacher_temperature_warmup": (0.02, 0.04)}, "start, end, steps"),
    ],
)
def test_bad_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DINOLoss(**{"out_dim": 8, **kwargs})


def test_bad_inputs():
    loss = DINOLoss(8)
    s, t = torch.randn(4, 4, 8), torch.randn(4, 2, 8)
    cases = [
        (s[:, 0], t, "dimensions"),  # (N, K) student
        (s, t[:, :1], "num_global"),  # one teacher crop for G = 2
        (s[..., :7], t[..., :7], "out_dim"),  # K != out_dim
        (s, t[:3], "batch"),  # teacher batch differs
        (s[:, :1], t[:, :1], "num_global"),
    ]
    for student, targets, match in cases:
        with pytest.raises(ValueError, match=match):
            loss(student, targets=targets)
    with pytest.raises(ValueError, match="V >= max"):
        DINOLoss(8, num_global=1)(s[:, :1], targets=t[:, :1])
    bad = s.clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        loss(bad, targets=t)
    with pytest.raises(ValueError, match="targets"):
        loss(s)
    with pytest.raises(ValueError, match="step"):
        loss.set_step(-1)


def test_center_is_synchronised_over_ranks(monkeypatch):
    """Simulated 2 ranks (all_reduce adds the other half's sum): each rank's centre equals
    one process's centre on the whole batch, and each rank's loss is its own half's loss.
    (Simulated rather than spawned: two processes importing torch cost seconds.)"""
    import manyview.distill.dino as dino_module

    s, t = randn(8, 4, 6, seed=11), randn(8, 2, 6, seed=12)
    whole = DINOLoss(6).double()
    whole(s, targets=t)
    monkeypatch.setattr(dino_module.dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dino_module.dist, "get_world_size", lambda: 2)
    for rank in range(2):
        other = t[4:] if rank == 0 else t[:4]
        monkeypatch.setattr(
            dino_module.dist, "all_reduce", lambda x, other=other: x.add_(other.sum(dim=(0, 1)))
        )
        rows = slice(rank * 4, rank * 4 + 4)
        loss = DINOLoss(6).double()
        value = loss(s[rows], targets=t[rows])
        assert torch.allclose(loss.center, whole.center, rtol=1e-12, atol=1e-15)
        assert torch.allclose(value, DINOLoss(6).double().eval()(s[rows], targets=t[rows]))
        unsynced = DINOLoss(6, sync_center=False).double()
        unsynced(s[rows], targets=t[rows])
        assert not torch.allclose(unsynced.center, whole.center)
