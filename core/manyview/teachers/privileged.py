"""A teacher with privileged information: it sees inputs the student never sees (other
modalities, clean views, hindsight) — Vapnik & Vashist 2009's learning using privileged
information; the base of cross-modal distillation (Gupta, Hoffman, Malik 2016)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from manyview.teachers.base import Teacher, trainable_parameter_names

PASS_THROUGH = ("label", "labels", "index")


class PrivilegedTeacher(Teacher):
    """A frozen teacher over several inputs of a batch, beside a student that sees fewer.

    The batch is a mapping (e.g. ``{"image": ..., "text": ..., "audio": ..., "label": ...}``).
    The teacher is called with the ``teacher_keys`` entries as keyword arguments; the student
    gets only :meth:`student_inputs` — its ``student_keys`` entries — so teacher-only inputs
    can never reach the student's forward.

    Args:
        module: the teacher network, called as ``module(**{key: batch[key]})``.
        teacher_keys: the inputs the teacher sees.
        student_keys: the inputs the student sees (may overlap the teacher's).
        freeze: freeze the module's parameters in place (otherwise they must already be
            frozen, as for the ``frozen`` teacher).
    """

    def __init__(
        self,
        module: nn.Module,
        *,
        teacher_keys: Sequence[str],
        student_keys: Sequence[str],
        freeze: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(module, nn.Module):
            raise ValueError(
                f"privileged: module must be an nn.Module, got {type(module).__name__}"
            )
        teacher_keys, student_keys = tuple(teacher_keys), tuple(student_keys)
        if not teacher_keys or not student_keys:
            raise ValueError("privileged: teacher_keys and student_keys must both be non-empty")
        if set(teacher_keys) <= set(student_keys):
            raise ValueError(
                f"privileged: the teacher sees nothing the student does not ({teacher_keys} vs "
                f"{student_keys}); use the 'frozen' teacher instead"
            )
        trainable = trainable_parameter_names(module)
        if trainable and not freeze:
            raise ValueError(
                f"privileged: the module has trainable parameters ({', '.join(trainable)}, ...); "
                "pass a frozen copy, or freeze=True"
            )
        module.requires_grad_(False)
        self.module = module.eval()
        self.teacher_keys, self.student_keys = teacher_keys, student_keys

    @property
    def privileged_keys(self) -> tuple[str, ...]:
        """The inputs only the teacher sees."""
        return tuple(k for k in self.teacher_keys if k not in self.student_keys)

    def _pick(self, batch: Mapping[str, Any], keys: Sequence[str], who: str) -> dict[str, Any]:
        if not isinstance(batch, Mapping):
            raise ValueError(
                f"privileged: the batch must be a mapping of inputs, got {type(batch).__name__}"
            )
        missing = [k for k in keys if k not in batch]
        if missing:
            raise ValueError(
                f"privileged: the batch lacks {missing} that the {who} needs; it has {sorted(batch)}"
            )
        return {k: batch[k] for k in keys}

    def targets(self, batch: Mapping[str, Any], **kwargs: Any) -> Any:
        return self.module(**self._pick(batch, self.teacher_keys, "teacher"))

    def student_inputs(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """The part of ``batch`` the student may see: its keys (plus labels and indices)."""
        out = self._pick(batch, self.student_keys, "student")
        out.update({k: batch[k] for k in PASS_THROUGH if k in batch and k not in self.teacher_keys})
        return out

    def example_inputs(self, n: int = 4, *, generator: torch.Generator | None = None) -> Any:
        if hasattr(self.module, "example_inputs"):
            return self.module.example_inputs(n)
        keys = dict.fromkeys((*self.teacher_keys, *self.student_keys))
        return {k: torch.randn(n, 8, generator=generator) for k in keys}
