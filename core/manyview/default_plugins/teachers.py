"""Built-in teachers: EMA, frozen, ensemble, privileged and self."""

from __future__ import annotations

from typing import Any

from manyview.hookspecs import hookimpl
from manyview.registry import register_all

# name -> factory, summary and example_kwargs (a function of manyview.testing.examples that
# gives the constructor arguments the registry-wide contract tests build the teacher with).
BUILTIN_TEACHERS: dict[str, dict[str, str]] = {
    "ema": {
        "factory": "manyview.teachers.ema:EMATeacher",
        "summary": "Exponential moving average of the student, constant or cosine momentum (BYOL/DINO)",
        "example_kwargs": "manyview.testing.examples:ema_kwargs",
    },
    "frozen": {
        "factory": "manyview.teachers.frozen:FrozenTeacher",
        "summary": "A fixed module, or one loaded from a local safetensors checkpoint",
        "example_kwargs": "manyview.testing.examples:frozen_kwargs",
    },
    "ensemble": {
        "factory": "manyview.teachers.ensemble:EnsembleTeacher",
        "summary": "Several teachers combined, with UniSD's agreement weighting",
        "example_kwargs": "manyview.testing.examples:ensemble_kwargs",
    },
    "privileged": {
        "factory": "manyview.teachers.privileged:PrivilegedTeacher",
        "summary": "A teacher that sees inputs the student does not (cross-modal distillation)",
        "example_kwargs": "manyview.testing.examples:privileged_kwargs",
    },
    "self": {
        "factory": "manyview.teachers.self_teacher:SelfTeacher",
        "summary": "The student itself under torch.no_grad, for self-evaluating objectives",
        "example_kwargs": "manyview.testing.examples:self_kwargs",
    },
}


@hookimpl
def manyview_register_teachers(register: Any) -> None:
    register_all(register, BUILTIN_TEACHERS)
