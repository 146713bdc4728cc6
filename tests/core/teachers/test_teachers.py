"""Teachers: EMA against a hand-computed update, state round trips, frozen checkpoints,
ensemble agreement weights, the privileged teacher's guarantee, the self teacher."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import manyview
from manyview.teachers import agreement_weights


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))


def _perturb(module, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=g))
        module[1].running_mean.add_(1.0)
        module[1].num_batches_tracked.add_(5)


# ----------------------------------------------------------------------------- ema


def test_ema_matches_hand_computed_updates_over_three_steps():
    student = _net()
    teacher = manyview.create("teacher", "ema", student=student, momentum=0.9)
    expected = {k: v.clone().double() for k, v in student.state_dict().items()}
    for step in range(3):
        _perturb(student, step)
        teacher.update(student, step)
        for name, value in student.state_dict().items():
            if value.is_floating_point():
                expected[name] = 0.9 * expected[name] + 0.1 * value.double()
            else:
                expected[name] = value.clone().double()
    for name, value in teacher.module.state_dict().items():
        assert torch.allclose(value.double(), expected[name], atol=1e-6), name
    assert int(teacher.num_updates) == 3


def test_ema_teacher_never_requires_grad_and_stays_in_eval():
    student = _net()
    teacher = manyview.create("teacher", "ema", student=student)
    assert not any(p.requires_grad for p in teacher.parameters())
    teacher.train()
    assert not teacher.module.training
    out = teacher(torch.randn(5, 3))
    assert not out.requires_grad
    assert all(p.requires_grad for p in student.parameters())


def test_ema_cosine_schedule():
    teacher = manyview.create(
        "teacher", "ema", student=_net(), momentum=0.996, schedule="cosine", total_steps=100
    )
    assert math.isclose(teacher.momentum_at(0), 0.996)
    assert math.isclose(teacher.momentum_at(50), 0.998)
    assert math.isclose(teacher.momentum_at(100), 1.0)
    assert math.isclose(teacher.momentum_at(1000), 1.0)


def test_ema_every_n_steps():
    student = _net()
    teacher = manyview.create("teacher", "ema", student=student, momentum=0.5, every=10)
    before = copy.deepcopy(teacher.module.state_dict())
    _perturb(student, 0)
    teacher.update(student, 3)  # not a multiple of 10: no change
    assert all(torch.equal(before[k], v) for k, v in teacher.module.state_dict().items())
    teacher.update(student, 10)
    w = teacher.module[0].weight
    assert torch.allclose(w, 0.5 * before["0.weight"] + 0.5 * student[0].weight.detach())


def test_ema_frozen_parts_are_averaged_too():
    student = _net()
    student[0].requires_grad_(False)
    teacher = manyview.create("teacher", "ema", student=student, momentum=0.0)
    with torch.no_grad():
        student[0].weight.fill_(3.0)
    teacher.update(student, 0)
    assert torch.equal(teacher.module[0].weight, student[0].weight)


class LoRALinear(nn.Module):
    """A frozen base weight plus a trainable low-rank adapter B·A."""

    def __init__(self, d_in=4, d_out=3, rank=2, scale=2.0):
        super().__init__()
        self.base = nn.Linear(d_in, d_out).requires_grad_(False)
        self.lora_a = nn.Parameter(torch.randn(rank, d_in) * 0.1)
        self.lora_b = nn.Parameter(torch.zeros(d_out, rank))
        self.scale = scale

    def forward(self, x):
        return self.base(x) + self.scale * (x @ self.lora_a.T @ self.lora_b.T)

    def merged(self) -> nn.Linear:
        plain = copy.deepcopy(self.base)
        with torch.no_grad():
            plain.weight += self.scale * self.lora_b @ self.lora_a
        return plain


def test_ema_averages_merged_adapter_weights():
    student = LoRALinear()
    teacher = manyview.create(
        "teacher", "ema", student=student, momentum=0.5, merge=LoRALinear.merged
    )
    expected = student.merged().weight.detach().clone()
    for step in range(3):
        with torch.no_grad():
            student.lora_a.add_(0.3)
            student.lora_b.add_(0.2 * (step + 1))
        teacher.update(student, step)
        expected = 0.5 * expected + 0.5 * student.merged().weight.detach()
    assert torch.allclose(teacher.module.weight, expected, atol=1e-6)
    assert not torch.allclose(teacher.module.weight, student.base.weight)  # the teacher moved
    x = torch.randn(5, 4)
    assert teacher(x).shape == (5, 3)


def test_ema_state_round_trip():
    student = _net()
    teacher = manyview.create("teacher", "ema", student=student, momentum=0.7)
    _perturb(student, 1)
    teacher.update(student, 0)
    fresh = manyview.create("teacher", "ema", student=_net(5), momentum=0.7)
    fresh.load_state_dict(teacher.state_dict())
    x = torch.randn(6, 3)
    assert torch.equal(fresh(x), teacher(x))
    assert int(fresh.num_updates) == 1


def test_ema_bad_input():
    with pytest.raises(ValueError, match=r"nn\.Module"):
        manyview.create("teacher", "ema", student="resnet")
    with pytest.raises(ValueError, match="total_steps"):
        manyview.create("teacher", "ema", student=_net(), schedule="cosine")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        manyview.create("teacher", "ema", student=_net(), momentum=1.5)
    teacher = manyview.create("teacher", "ema", student=_net())
    with pytest.raises(ValueError, match="do not match"):
        teacher.update(nn.Linear(3, 2), 0)


# ----------------------------------------------------------------------------- frozen


def test_frozen_refuses_a_trainable_module_unless_told():
    net = _net()
    with pytest.raises(ValueError, match=r"trainable parameters.*freeze=True"):
        manyview.create("teacher", "frozen", module=net)
    teacher = manyview.create("teacher", "frozen", module=net, freeze=True)
    assert not any(p.requires_grad for p in net.parameters())
    before = copy.deepcopy(net.state_dict())
    teacher.update(_net(3), 7)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_frozen_loads_a_local_safetensors_checkpoint(tmp_path):
    source = _net(1).eval()
    path = tmp_path / "teacher.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    teacher = manyview.create(
        "teacher", "frozen", module=_net(2).requires_grad_(False), checkpoint=path
    )
    x = torch.randn(4, 3)
    assert torch.equal(teacher(x), source(x))


def test_frozen_checkpoint_errors(tmp_path):
    module = _net().requires_grad_(False)
    with pytest.raises(ValueError, match="does not exist"):
        manyview.create(
            "teacher", "frozen", module=module, checkpoint=tmp_path / "none.safetensors"
        )
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(ValueError, match="cannot read"):
        manyview.create("teacher", "frozen", module=module, checkpoint=corrupt)
    other = tmp_path / "other.safetensors"
    save_file({"0.weight": torch.zeros(9, 9)}, str(other))
    with pytest.raises(ValueError, match=r"shape mismatch.*0\.weight"):
        manyview.create("teacher", "frozen", module=module, checkpoint=other)
    partial = tmp_path / "partial.safetensors"
    save_file({"0.weight": torch.zeros(4, 3)}, str(partial))
    with pytest.raises(ValueError, match=r"missing \['0.bias'"):
        manyview.create("teacher", "frozen", module=module, checkpoint=partial)


def test_frozen_from_a_registered_encoder(fresh_plugins):
    from manyview import manager

    class Plugin:
        @manyview.hookimpl
        def manyview_register_encoders(self, register):
            register("tiny_enc", lambda width=4: nn.Linear(3, width), modality="embedding")

    manager.register_plugin(Plugin(), name="enc")
    teacher = manyview.create("teacher", "frozen", encoder="tiny_enc", encoder_kwargs={"width": 6})
    assert teacher(torch.randn(2, 3)).shape == (2, 6)
    assert not any(p.requires_grad for p in teacher.parameters())


# ----------------------------------------------------------------------------- ensemble


def test_agreement_weights():
    same = torch.randn(1, 10).expand(3, 10)
    assert torch.equal(agreement_weights(same), torch.ones(10))
    scores = torch.randn(4, 50)
    w = agreement_weights(scores, gamma=1.0)
    assert (w >= 0.01).all() and (w <= 1).all()
    d = scores.var(0, unbiased=False)
    expected = (1 / (1 + (d / torch.quantile(d, 0.95)).clamp(max=10))).clamp(min=0.01)
    assert torch.allclose(w, expected)
    assert w[d.argmax()] < w[d.argmin()]
    seq = agreement_weights(torch.randn(3, 2, 5), level="sequence", gamma=2.0)
    assert seq.shape == (2, 5) and (seq[:, :1] == seq).all()
    with pytest.raises(ValueError, match="K >= 2"):
        agreement_weights(torch.randn(1, 5))


def test_ensemble_targets_and_weights():
    nets = [_net(s).eval().requires_grad_(False) for s in range(3)]
    teacher = manyview.create("teacher", "ensemble", teachers=nets)
    x = torch.randn(5, 3)
    targets, weights = teacher.forward_with_weights(x)
    outs = torch.stack([n(x) for n in nets])
    assert torch.allclose(targets, outs.mean(0), atol=1e-6)
    assert torch.allclose(weights, agreement_weights(outs.mean(-1)))
    assert torch.equal(teacher(x), targets)
    assert teacher.last_weights is not None
    mixed = manyview.create("teacher", "ensemble", teachers=nets, teacher_weights=[1, 0, 1])
    assert torch.allclose(mixed(x), (outs[0] + outs[2]) / 2, atol=1e-6)


def test_ensemble_bad_input():
    with pytest.raises(ValueError, match="at least two"):
        manyview.create("teacher", "ensemble", teachers=[_net().requires_grad_(False)])
    odd = [nn.Linear(3, 2).requires_grad_(False), nn.Linear(3, 5).requires_grad_(False)]
    with pytest.raises(ValueError, match="differ in shape"):
        manyview.create("teacher", "ensemble", teachers=odd)(torch.randn(2, 3))
    with pytest.raises(ValueError, match="trainable"):
        manyview.create("teacher", "ensemble", teachers=[_net(), _net()])


# ----------------------------------------------------------------------------- privileged


class RecordingStudent(nn.Module):
    def __init__(self):
        super().__init__()
        self.seen: list[set[str]] = []
        self.net = nn.Linear(8, 4)

    def forward(self, **inputs):
        self.seen.append(set(inputs))
        return self.net(inputs["audio"])


def test_privileged_inputs_never_reach_the_student():
    from manyview.testing.examples import TwoInputNet

    teacher = manyview.create(
        "teacher",
        "privileged",
        module=TwoInputNet().requires_grad_(False),
        teacher_keys=("image", "text"),
        student_keys=("audio",),
    )
    student = RecordingStudent()
    for _ in range(3):
        batch = {
            "image": torch.randn(4, 8),
            "text": torch.randn(4, 8),
            "audio": torch.randn(4, 8),
            "label": torch.arange(4),
        }
        targets = teacher(batch)
        out = student(**teacher.student_inputs(batch))
        loss = ((out - targets) ** 2).mean()
        loss.backward()
    assert teacher.privileged_keys == ("image", "text")
    assert all(not (seen & {"image", "text"}) for seen in student.seen)
    assert student.seen == [{"audio", "label"}] * 3


def test_privileged_bad_input():
    from manyview.testing.examples import TwoInputNet

    net = TwoInputNet().requires_grad_(False)
    with pytest.raises(ValueError, match="sees nothing the student does not"):
        manyview.create(
            "teacher",
            "privileged",
            module=net,
            teacher_keys=("audio",),
            student_keys=("audio", "image"),
        )
    teacher = manyview.create(
        "teacher", "privileged", module=net, teacher_keys=("image", "text"), student_keys=("audio",)
    )
    with pytest.raises(ValueError, match=r"lacks \['text'\]"):
        teacher({"image": torch.randn(2, 8), "audio": torch.randn(2, 8)})
    with pytest.raises(ValueError, match="mapping"):
        teacher(torch.randn(2, 8))


# ----------------------------------------------------------------------------- self


def test_self_teacher_is_the_student_without_grad():
    student = nn.Sequential(nn.Linear(3, 8), nn.Dropout(0.5), nn.Linear(8, 2))
    teacher = manyview.create("teacher", "self", student=student)
    x = torch.randn(16, 3)
    student.train()
    out = teacher(x)
    assert not out.requires_grad
    assert student.training  # mode restored
    student.eval()
    assert torch.equal(out, student(x))  # eval mode: dropout off, same weights
    assert list(teacher.state_dict()) == []
    with torch.no_grad():
        student[0].weight.add_(1.0)
    assert not torch.equal(teacher(x), out)  # always the current weights


def test_hold_student_keeps_the_student_out_of_the_teachers_state():
    from torch import nn

    import manyview

    student = nn.Linear(4, 2)
    teacher = manyview.create("teacher", "self", student=student)
    assert teacher.student is student
    assert not teacher.state_dict() and not list(teacher.parameters())
    with pytest.raises(ValueError, match=r"self: student must be an nn\.Module, got str"):
        manyview.create("teacher", "self", student="model")
