"""The student as its own teacher, without gradients (self-evaluation, SLA's aggregate,
Self-E's evaluator)."""

from __future__ import annotations

from typing import Any, ClassVar

from torch import nn

from manyview.teachers.base import Teacher, call_module, read_key


class SelfTeacher(Teacher):
    """The student itself under ``torch.no_grad``: targets from the current weights.

    Args:
        student: the student module (held by reference, not copied: no state of its own).
        eval_mode: run the student in eval mode for the targets (dropout off), restoring its
            mode afterwards (default ``True``).
        key: the entry of a mapping input to read (a recipe passes the student's modality).
    """

    from_context: ClassVar[dict[str, str]] = {"student": "student", "key": "modality"}

    def __init__(
        self, student: nn.Module, *, eval_mode: bool = True, key: str | None = None
    ) -> None:
        super().__init__()
        self.hold_student(student, "self")
        self.eval_mode = eval_mode
        self.key = key

    def targets(self, inputs: Any, **kwargs: Any) -> Any:
        batch = read_key(inputs, self.key, "self")
        student = self.student
        was_training = student.training
        if self.eval_mode:
            student.eval()
        try:
            return call_module(student, batch)
        finally:
            student.train(was_training)
