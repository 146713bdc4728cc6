"""Contract checks of teachers: targets without gradients, no trainable parameters, a
``state_dict`` round trip and ``update``."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor

from manyview.testing.examples import build

__all__ = ["TeacherContractTests", "check_teacher"]


def check_teacher(teacher: Any, n: int = 4) -> None:
    """A teacher makes targets without gradients, never has trainable parameters, survives a
    ``state_dict`` round trip into a copy, reads its ``keys`` from a batch mapping (a teacher
    of one key gives the same targets for ``{key: x, ...}`` as for ``x``), and ``update``
    runs."""
    batch = teacher.example_inputs(n, generator=torch.Generator().manual_seed(0))
    params = [name for name, p in teacher.named_parameters() if p.requires_grad]
    assert not params, f"a teacher must not have trainable parameters: {params[:3]}"
    out = teacher(batch)
    tensors = (
        [out] if isinstance(out, Tensor) else [t for t in _flatten(out) if isinstance(t, Tensor)]
    )
    assert tensors, f"the teacher returned no tensor: {type(out).__name__}"
    for t in tensors:
        assert not t.requires_grad, "teacher targets must not require grad"
        if t.is_floating_point():
            assert torch.isfinite(t).all(), "non-finite teacher targets"
    twin = copy.deepcopy(teacher)
    twin.load_state_dict(teacher.state_dict())
    again = twin(batch)
    for a, b in zip(
        tensors, [again] if isinstance(again, Tensor) else _flatten(again), strict=False
    ):
        if isinstance(b, Tensor):
            assert torch.equal(a, b), "a state_dict round trip changed the targets"
    keys = tuple(getattr(teacher, "keys", ()))
    if len(keys) == 1 and not isinstance(batch, dict):  # the typed input: a batch mapping
        mapped = teacher({keys[0]: batch, "label": torch.zeros(n, dtype=torch.long)})
        again = [mapped] if isinstance(mapped, Tensor) else _flatten(mapped)
        for a, b in zip(tensors, again, strict=False):
            if isinstance(b, Tensor):
                assert torch.equal(a, b), (
                    f"reading {keys[0]!r} of a batch mapping changed the targets"
                )
    teacher.update(getattr(teacher, "student", None), 1)


def _flatten(obj: Any) -> list[Any]:
    if isinstance(obj, dict):
        return [x for v in obj.values() for x in _flatten(v)]
    if isinstance(obj, list | tuple):
        return [x for v in obj for x in _flatten(v)]
    return [obj]


class TeacherContractTests:
    """pytest mixin: set ``name`` (a registered teacher) and ``kwargs``."""

    name: str = ""
    kwargs: dict[str, Any] = {}  # noqa: RUF012

    def test_teacher_contract(self) -> None:
        check_teacher(build("teacher", self.name, **self.kwargs))
